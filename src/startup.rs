//! Builds the application (pool, migrations, router, listeners) and runs it until a
//! shutdown signal, draining in-flight requests.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use salvo::catcher::Catcher;
use salvo::conn::tcp::TcpAcceptor;
use salvo::oapi::OpenApi;
use salvo::oapi::security::{Http, HttpAuthScheme, SecurityScheme};
use salvo::oapi::swagger_ui::SwaggerUi;
use salvo::prelude::*;
use salvo::serve_static::StaticDir;

use crate::auth::cache::AuthCache;
use crate::auth::jwt::JwtKeys;
use crate::auth::password::PasswordHasher;
use crate::auth::throttle::Limits;
use crate::auth::{authenticate, require_admin};
use crate::config::Settings;
use crate::error::ProblemCatcher;
use crate::middleware::{api_headers, request_context, security_headers, static_headers};
use crate::routes::{admin, auth, health, limit_by_ip, tasks};
use crate::state::AppState;
use crate::{db, metrics as app_metrics};

pub const OPENAPI_PATH: &str = "/apidocs/openapi.json";

pub struct Application {
    port: u16,
    metrics_port: Option<u16>,
    state: AppState,
    acceptor: TcpAcceptor,
    metrics_acceptor: Option<TcpAcceptor>,
    metrics: PrometheusHandle,
}

/// The signing secret: configured, or (development only; `Settings` refuses this in
/// production) a random one that invalidates all tokens at every restart.
fn jwt_secret(settings: &Settings) -> Vec<u8> {
    match &settings.auth.jwt_secret {
        Some(secret) => secret.as_bytes().to_vec(),
        None => {
            tracing::warn!(
                "JWT_SECRET_KEY is not set: using a random secret for this run only. Tokens will not survive a restart and will not work across replicas. Set JWT_SECRET_KEY (>= 32 bytes) outside development."
            );
            let mut secret = vec![0u8; 64];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
            secret
        }
    }
}

pub async fn build_state(settings: Settings) -> anyhow::Result<AppState> {
    let db = db::connect(&settings)
        .await
        .context("connecting to the database")?;
    if settings.server.migrate_on_start {
        db::migrate(&db).await.context("running migrations")?;
    }
    let jwt = JwtKeys::new(&jwt_secret(&settings), &settings.auth);
    let hasher = PasswordHasher::new(settings.auth.hash_concurrency);
    Ok(AppState {
        db,
        hasher,
        limits: Arc::new(Limits::new(settings.limits.clone())),
        auth_cache: Arc::new(AuthCache::new(Duration::from_millis(
            settings.auth.state_cache_ttl_ms,
        ))),
        jwt: Arc::new(jwt),
        settings: Arc::new(settings),
        admin_lock: Arc::default(),
        draining: Arc::new(AtomicBool::new(false)),
    })
}

async fn bind(host: &str, port: u16) -> anyhow::Result<(TcpAcceptor, u16)> {
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .with_context(|| format!("binding {host}:{port}"))?;
    let port = listener.local_addr()?.port();
    let acceptor = TcpAcceptor::try_from(listener).context("creating acceptor")?;
    Ok((acceptor, port))
}

/// Every `/api/v1` route, health endpoints and (optionally) `/metrics`.
fn api_router() -> Router {
    let auth_public = Router::with_path("auth")
        .hoop(limit_by_ip)
        .push(Router::with_path("register").post(auth::register))
        .push(Router::with_path("login").post(auth::login))
        .push(Router::with_path("refresh").post(auth::refresh))
        .push(Router::with_path("logout").post(auth::logout));
    let auth_private = Router::with_path("auth")
        .hoop(authenticate)
        .push(Router::with_path("logout-all").post(auth::logout_all))
        .push(Router::with_path("me").get(auth::me).patch(auth::update_me))
        .push(Router::with_path("password").post(auth::change_password));
    let tasks = Router::with_path("tasks")
        .hoop(authenticate)
        .get(tasks::list)
        .post(tasks::create)
        .push(
            Router::with_path("{id}")
                .get(tasks::get)
                .put(tasks::replace)
                .patch(tasks::patch)
                .delete(tasks::delete),
        );
    let admin = Router::with_path("admin/users")
        .hoop(authenticate)
        .hoop(require_admin)
        .get(admin::list_users)
        .push(
            Router::with_path("{id}")
                .get(admin::get_user)
                .patch(admin::update_user)
                .delete(admin::delete_user),
        );
    let api = Router::with_path("api/v1")
        .hoop(api_headers)
        .push(auth_public)
        .push(auth_private)
        .push(tasks)
        .push(admin);
    let health = Router::with_path("health")
        .push(Router::with_path("live").get(health::live))
        .push(Router::with_path("ready").get(health::ready));
    Router::new().push(api).push(health)
}

pub fn openapi() -> OpenApi {
    OpenApi::new("taskapi", env!("CARGO_PKG_VERSION"))
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer).bearer_format("JWT")),
        )
        .merge_router(&api_router())
}

fn is_reserved_path(path: &str) -> bool {
    ["/api/", "/health/", "/apidocs", "/metrics"]
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

struct MetricsEndpoint(PrometheusHandle);

#[async_trait]
impl Handler for MetricsEndpoint {
    async fn handle(
        &self,
        _req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        if let Ok(state) = depot.get_typed::<AppState>() {
            app_metrics::record_pool(&state.db);
        }
        res.add_header(
            "content-type",
            "text/plain; version=0.0.4; charset=utf-8",
            true,
        )
        .ok();
        let _ = res.write_body(self.0.render());
    }
}

fn service(router: Router, state: &AppState) -> Service {
    Service::new(router)
        .catcher(Catcher::new(ProblemCatcher))
        .hoop(affix_state::inject(state.clone()))
        .hoop(request_context)
        .hoop(security_headers)
        .hoop(CatchPanic::new())
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let metrics = app_metrics::install()?;
        let (acceptor, port) = bind(&settings.server.host, settings.server.port).await?;
        let (metrics_acceptor, metrics_port) = match settings.server.metrics_port {
            Some(metrics_port) => {
                let (acceptor, port) = bind(&settings.server.host, metrics_port).await?;
                (Some(acceptor), Some(port))
            }
            None => (None, None),
        };
        let state = build_state(settings).await?;
        Ok(Self {
            port,
            metrics_port,
            state,
            acceptor,
            metrics_acceptor,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    fn router(&self) -> Router {
        let mut root = api_router();
        if self.metrics_acceptor.is_none() {
            root =
                root.push(Router::with_path("metrics").get(MetricsEndpoint(self.metrics.clone())));
        }
        let static_dir = self.state.settings.server.static_dir.clone();
        root.push(openapi().into_router(OPENAPI_PATH))
            .push(SwaggerUi::new(OPENAPI_PATH).into_router("apidocs"))
            .push(
                // The front end owns every path the API, health and docs routes do not, so
                // that unknown API paths stay plain 404s and `Allow` lists only real methods.
                Router::with_filter_fn(|req, _| !is_reserved_path(req.uri().path()))
                    .path("{**path}")
                    .hoop(static_headers)
                    .get(StaticDir::new([static_dir]).defaults("index.html")),
            )
    }

    /// Serves until SIGINT/SIGTERM.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` resolves, then drains: readiness fails at once, no new
    /// connections are accepted, in-flight requests get the configured grace period.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = self.router();
        let state = self.state.clone();
        let grace = Duration::from_secs(state.settings.server.shutdown_grace_secs);
        let server = Server::new(self.acceptor);
        let handle = server.handle();
        let metrics_server = self.metrics_acceptor.map(|acceptor| {
            let server = Server::new(acceptor);
            let handle = server.handle();
            let router = Router::with_path("metrics").get(MetricsEndpoint(self.metrics.clone()));
            let service = service(router, &state);
            (
                tokio::spawn(async move { server.serve(service).await }),
                handle,
            )
        });
        let drain_state = state.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!(
                grace_secs = grace.as_secs(),
                "shutdown signal received; draining"
            );
            drain_state.start_draining();
            handle.stop_graceful(Some(grace));
            if let Some((_, metrics_handle)) = &metrics_server {
                metrics_handle.stop_graceful(Some(grace));
            }
        });
        tracing::info!(port = self.port, "taskapi listening");
        server.serve(service(router, &state)).await;
        state.db.close_by_ref().await.ok();
        tracing::info!("taskapi stopped");
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
