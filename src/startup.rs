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
use secrecy::ExposeSecret;

use crate::auth::cache::AuthCache;
use crate::auth::jwt::JwtKeys;
use crate::auth::password::PasswordHasher;
use crate::client_ip::ClientIpResolver;
use crate::cluster::{Feed, RedisLink, Revocations};
use crate::config::{Profile, Settings};
use crate::error::ProblemCatcher;
use crate::limits::Limits;
use crate::middleware::{
    api_headers, request_context, run_writes_to_completion, security_headers, static_headers,
};
use crate::models::tasks::{ChangeListener, TaskStore};
use crate::models::{idempotency, sessions};
use crate::routes::frontend::{EmbeddedFrontEnd, apidocs_headers};
use crate::routes::guard::{authenticate, limit_by_ip, require_admin};
use crate::routes::responses::{head_content_length, with_head};
use crate::routes::{admin, auth, comments, events, health, projects, tasks};
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
        Some(secret) => secret.expose_secret().as_bytes().to_vec(),
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
        // Through a pool of its own: the server pool's statement timeout must not cut a
        // long schema change short.
        let admin = db::connect_unbounded(&settings)
            .await
            .context("connecting to the database for migrations")?;
        db::migrate(&admin).await.context("running migrations")?;
        admin.close().await.ok();
    }
    let jwt = JwtKeys::new(&jwt_secret(&settings), &settings.auth);
    let hasher = PasswordHasher::new(settings.auth.hash_concurrency);
    let redis = RedisLink::from_settings(&settings.redis)?;
    if redis.is_none() && settings.profile == Profile::Production {
        tracing::warn!(
            "REDIS_URL is not set: rate limits, login lockouts and revocation fan-out are per process. Fine for one instance; with replicas set REDIS_URL."
        );
    }
    let auth_cache = Arc::new(AuthCache::new(Duration::from_millis(
        settings.auth.state_cache_ttl_ms,
    )));
    let feed = Arc::new(Feed::new(
        redis.clone(),
        settings.events.max_streams_per_user,
        settings.events.max_streams_per_replica,
    ));
    feed.spawn_listener();
    feed.spawn_poller(
        db.clone(),
        Duration::from_millis(settings.events.poll_ms.max(10)),
    );
    let revocations = Arc::new(
        Revocations::new(
            auth_cache,
            redis.clone(),
            Duration::from_secs(settings.auth.access_token_ttl_secs),
        )
        .with_feed(Arc::clone(&feed)),
    );
    revocations.spawn_listener();
    Ok(AppState {
        tasks: TaskStore::new(db.clone(), Arc::clone(&feed) as Arc<dyn ChangeListener>),
        db,
        hasher,
        limits: Arc::new(Limits::new(settings.limits.clone(), redis.clone())),
        revocations,
        feed,
        redis,
        client_ip: Arc::new(ClientIpResolver::new(&settings.server)),
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
        // Before `{id}`, which would take "events" for a task id.
        .push(Router::with_path("events").get(events::task_events))
        .push(
            Router::with_path("{id}")
                .get(tasks::get)
                .put(tasks::replace)
                .patch(tasks::patch)
                .delete(tasks::delete)
                .push(
                    Router::with_path("comments")
                        .get(comments::list)
                        .post(comments::create)
                        .push(
                            Router::with_path("{comment_id}")
                                .patch(comments::update)
                                .delete(comments::delete),
                        ),
                ),
        );
    let projects = Router::with_path("projects")
        .hoop(authenticate)
        .get(projects::list)
        .post(projects::create)
        .push(
            Router::with_path("{id}")
                .get(projects::get)
                .patch(projects::patch)
                .delete(projects::delete)
                .push(Router::with_path("tasks").get(tasks::list_in_project))
                .push(
                    Router::with_path("labels")
                        .get(projects::list_labels)
                        .post(projects::create_label)
                        .push(
                            Router::with_path("{label_id}")
                                .patch(projects::update_label)
                                .delete(projects::delete_label),
                        ),
                )
                .push(
                    Router::with_path("members")
                        .get(projects::members)
                        .post(projects::add_member)
                        .push(
                            Router::with_path("{user_id}")
                                .patch(projects::update_member)
                                .delete(projects::remove_member),
                        ),
                ),
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
        .push(projects)
        .push(admin);
    let health = Router::with_path("health")
        .push(Router::with_path("live").get(health::live))
        .push(Router::with_path("ready").get(health::ready));
    Router::new().push(api).push(health)
}

pub fn openapi() -> OpenApi {
    let doc = OpenApi::new("taskapi", env!("CARGO_PKG_VERSION"))
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::new(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(
                        "Access token from login or refresh: a JWT signed with HS256 only \
                         (pinned), with `exp`, `iss`, `aud` and `jti` required and checked, \
                         per RFC8725 (JSON Web Token Best Current Practices); 15 minutes.",
                    ),
            ),
        )
        .merge_router(&api_router());
    crate::routes::responses::declare_middleware_headers(doc)
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
            app_metrics::record_pool(db::pool_usage(&state.db));
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

/// The hoops and catcher every listener runs behind. Public so that tests can mount a
/// route the API does not have (one that panics) behind exactly this chain.
pub fn service(router: Router, state: &AppState) -> Service {
    let service = Service::new(router).catcher(Catcher::new(ProblemCatcher));
    // Outermost, so that every answer (errors and timeouts included) carries the CORS
    // headers a browser needs to let the page read it.
    let service = match cors(&state.settings.server.cors_allowed_origins) {
        Some(cors) => service.hoop(cors),
        None => service,
    };
    service
        .hoop(affix_state::inject(state.clone()))
        .hoop(request_context)
        .hoop(security_headers)
        .hoop(run_writes_to_completion)
        .hoop(CatchPanic::new())
}

/// CORS for the configured origins, or none (same-origin only) when there are none. Every
/// header a client sends or reads is listed: a browser would hide the others.
fn cors(origins: &[String]) -> Option<salvo::cors::CorsHandler> {
    use salvo::cors::{AllowOrigin, Cors};
    use salvo::http::{HeaderName, Method};
    if origins.is_empty() {
        return None;
    }
    let handler = Cors::new()
        .allow_origin(AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| origin.parse::<salvo::http::HeaderValue>().ok()),
        ))
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            HeaderName::from_static("authorization"),
            HeaderName::from_static("content-type"),
            HeaderName::from_static("if-match"),
            HeaderName::from_static("if-none-match"),
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            HeaderName::from_static("etag"),
            HeaderName::from_static("location"),
            HeaderName::from_static("retry-after"),
            HeaderName::from_static("idempotent-replayed"),
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
            HeaderName::from_static("ratelimit-policy"),
        ])
        .max_age(600)
        .into_handler();
    Some(handler)
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let metrics = app_metrics::install()?;
        app_metrics::register_known_series(&openapi());
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
        // The front end owns every path the API, health and docs routes do not, so that
        // unknown API paths stay plain 404s and `Allow` lists only real methods. It is
        // embedded in the binary unless `server.static_dir` names a directory to serve.
        let front_end = Router::with_filter_fn(|req, _| !is_reserved_path(req.uri().path()))
            .path("{**path}")
            .hoop(static_headers);
        let front_end = if static_dir.as_os_str().is_empty() {
            front_end.get(EmbeddedFrontEnd)
        } else {
            front_end.get(StaticDir::new([static_dir]).defaults("index.html"))
        };
        let docs = Router::new()
            .hoop(apidocs_headers)
            .push(openapi().into_router(OPENAPI_PATH))
            .push(SwaggerUi::new(OPENAPI_PATH).into_router("apidocs"));
        with_head(root.push(docs).push(front_end)).hoop(head_content_length)
    }

    /// Serves until SIGINT/SIGTERM.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` resolves, then drains so that a rolling restart behind a load
    /// balancer loses nothing (see `crate::shutdown`): readiness turns 503 and HTTP/1
    /// responses carry `Connection: close` at once; the server keeps accepting for
    /// `server.shutdown_drain_delay_secs`; then the listener closes (new connections are
    /// refused, not accepted and reset), idle connections close, and in-flight requests get
    /// `server.shutdown_grace_secs`.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = self.router();
        let state = self.state.clone();
        let grace = Duration::from_secs(state.settings.server.shutdown_grace_secs);
        let drain_delay = Duration::from_secs(state.settings.server.shutdown_drain_delay_secs);
        let (acceptor, listener) = crate::shutdown::closable(self.acceptor);
        let server = Server::new(acceptor);
        let handle = server.handle();
        let metrics_server = self.metrics_acceptor.map(|acceptor| {
            let server = Server::new(acceptor);
            let handle = server.handle();
            let router =
                with_head(Router::with_path("metrics").get(MetricsEndpoint(self.metrics.clone())));
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
                drain_delay_secs = drain_delay.as_secs(),
                grace_secs = grace.as_secs(),
                "shutdown signal received; draining"
            );
            drain_state.start_draining();
            // Change-feed streams end now (`event: end`, reason `shutdown`, with a retry
            // hint) and reconnect elsewhere; left open they would hold the graceful stop
            // for its whole grace period.
            drain_state.feed.shut_down();
            if !drain_delay.is_zero() {
                tokio::time::sleep(drain_delay).await;
            }
            listener.close().await;
            handle.stop_graceful(Some(grace));
            if let Some((_, metrics_handle)) = &metrics_server {
                metrics_handle.stop_graceful(Some(grace));
            }
        });
        // Both ports as bound: with 0 configured, a supervisor (or a test) learns them here.
        tracing::info!(
            port = self.port,
            metrics_port = self.metrics_port,
            "taskapi listening"
        );
        // Housekeeping: dead refresh-token rows are deleted in bounded batches.
        let purge = tokio::spawn(sessions::purge_periodically(
            state.db.clone(),
            sessions::PURGE_EVERY,
        ));
        let events_settings = &state.settings.events;
        let prune = tokio::spawn(crate::models::events::prune_periodically(
            state.db.clone(),
            crate::models::events::Retention {
                max_age: Duration::from_secs(events_settings.retention_secs),
                max_per_user: events_settings.max_events_per_user,
            },
            Duration::from_secs(events_settings.prune_every_secs.max(1)),
        ));
        // Expired idempotency keys (24 h) likewise; lookups already ignore them.
        let purge_keys = tokio::spawn(idempotency::purge_periodically(
            state.db.clone(),
            idempotency::PURGE_EVERY,
        ));
        let upkeep = tokio::spawn(app_metrics::upkeep_periodically(
            self.metrics.clone(),
            app_metrics::UPKEEP_EVERY,
        ));
        server.serve(service(router, &state)).await;
        upkeep.abort();
        purge.abort();
        purge_keys.abort();
        prune.abort();
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
