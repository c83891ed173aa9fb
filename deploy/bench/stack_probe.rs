//! Stack-ceiling probe for `deploy/bench/run.sh`: the smallest salvo + sea-orm program that
//! does what `GET /api/v1/tasks/{id}` must do, and nothing else. It verifies the same HS256
//! access token with the same validation (`JwtKeys`: pinned algorithm, issuer, audience,
//! required claims, expiry), runs the same owner-scoped primary-key SELECT through the same
//! pool settings (`db::connect`), and writes the same JSON body (`TaskView`). No other
//! middleware: no request ids, spans, metrics, timeouts, account-state check, rate limit,
//! security headers or ETag. taskapi's throughput divided by this one's is the cost of
//! everything the service adds on top of its stack.
//!
//!   cargo build --release --example stack_probe
//!   PROBE_PORT=18081 DATABASE_URL=... JWT_SECRET_KEY=... target/release/examples/stack_probe
//!
//! It reads the same configuration as taskapi (`Settings::load`: environment and files) and
//! never migrates: point it at a database taskapi has already set up.

use std::sync::Arc;

use salvo::http::{HeaderValue, StatusCode, header};
use salvo::prelude::*;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use taskapi::auth::jwt::JwtKeys;
use taskapi::config::Settings;
use taskapi::entities::task;
use taskapi::views::TaskView;

struct GetTask {
    db: DatabaseConnection,
    jwt: Arc<JwtKeys>,
}

impl GetTask {
    async fn answer(&self, req: &Request) -> Result<Vec<u8>, StatusCode> {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or(StatusCode::UNAUTHORIZED)?;
        let claims = self
            .jwt
            .verify(token.trim())
            .map_err(|_| StatusCode::UNAUTHORIZED)?;
        let id: Uuid = req
            .param::<&str>("id")
            .and_then(|raw| raw.parse().ok())
            .ok_or(StatusCode::NOT_FOUND)?;
        let task = task::Entity::find_by_id(id)
            .filter(task::Column::ProjectId.eq(claims.sub))
            .one(&self.db)
            .await
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?
            .ok_or(StatusCode::NOT_FOUND)?;
        serde_json::to_vec(&TaskView::from(task)).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
    }
}

#[async_trait]
impl Handler for GetTask {
    async fn handle(
        &self,
        req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        match self.answer(req).await {
            Ok(body) => {
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                let _ = res.write_body(body);
            }
            Err(status) => {
                res.status_code(status);
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let secret = settings
        .auth
        .jwt_secret
        .as_ref()
        .map(|secret| {
            secrecy::ExposeSecret::expose_secret(secret)
                .as_bytes()
                .to_vec()
        })
        .ok_or_else(|| {
            anyhow::anyhow!("JWT_SECRET_KEY must be set (the probe checks taskapi's tokens)")
        })?;
    let handler = GetTask {
        db: taskapi::db::connect(&settings).await?,
        jwt: Arc::new(JwtKeys::new(&secret, &settings.auth)),
    };
    let port: u16 = std::env::var("PROBE_PORT")
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(18081);
    let router = Router::with_path("api/v1/tasks/{id}").get(handler);
    let acceptor = TcpListener::new(("127.0.0.1", port)).bind().await;
    println!("stack_probe listening on 127.0.0.1:{port}");
    Server::new(acceptor).serve(router).await;
    Ok(())
}
