//! Liveness (the process answers) and readiness (the database answers, migrations are
//! applied, and the server is not draining).

use std::time::Duration;

use salvo::http::{HeaderValue, StatusCode, header};
use salvo::prelude::*;

use crate::db;
use crate::error::UNAVAILABLE_RETRY_AFTER_SECS;
use crate::state::AppState;
use crate::views::HealthView;

const READY_DB_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up. Never touches the database.
#[endpoint(operation_id = "getLiveness", tags("health"), status_codes(200), responses((status_code = 200, body = HealthView)))]
pub async fn live(res: &mut Response) {
    res.render(Json(HealthView {
        status: "ok",
        database: None,
        migrations: None,
        redis: None,
    }));
}

fn unavailable(
    status: &'static str,
    database: Option<&'static str>,
    migrations: Option<&'static str>,
) -> (StatusCode, HealthView) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        HealthView {
            status,
            database,
            migrations,
            redis: None,
        },
    )
}

/// Ready for traffic: database reachable within 2 s and every migration this binary knows is
/// applied (a database *ahead* of the binary stays ready: migrations are expand-only);
/// 503 otherwise or while draining. Read-only: the probe never writes to the database.
#[endpoint(operation_id = "getReadiness", tags("health"), status_codes(200, 503), responses((status_code = 200, body = HealthView), (status_code = 503, body = HealthView)))]
pub async fn ready(depot: &mut Depot, res: &mut Response) {
    let (status, view) = match AppState::from_depot(depot) {
        Ok(state) if state.is_draining() => unavailable("draining", None, None),
        Ok(state) => {
            let database = tokio::time::timeout(READY_DB_TIMEOUT, async {
                state.db.ping().await?;
                db::migration_state(&state.db).await
            });
            let redis = async {
                match &state.redis {
                    Some(link) if link.ping().await => "up",
                    Some(_) => "down",
                    None => "disabled",
                }
            };
            let (migrations, redis) = tokio::join!(database, redis);
            match migrations {
                Ok(Ok(migrations)) if migrations.is_ready() => (
                    StatusCode::OK,
                    HealthView {
                        status: "ready",
                        database: Some("ok"),
                        migrations: Some(if migrations.unknown > 0 {
                            "ahead"
                        } else {
                            "applied"
                        }),
                        redis: Some(redis),
                    },
                ),
                Ok(Ok(_)) => unavailable("migrations pending", Some("ok"), Some("pending")),
                Ok(Err(_)) | Err(_) => unavailable("unavailable", Some("unreachable"), None),
            }
        }
        Err(_) => unavailable("unavailable", None, None),
    };
    if status == StatusCode::SERVICE_UNAVAILABLE {
        res.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECS),
        );
    }
    res.status_code(status);
    res.render(Json(view));
}
