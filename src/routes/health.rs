//! Liveness (the process answers) and readiness (the database answers, migrations are
//! applied, and the server is not draining).

use std::time::Duration;

use salvo::http::StatusCode;
use salvo::prelude::*;

use crate::db;
use crate::routes::app_state;
use crate::views::HealthView;

const READY_DB_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up. Never touches the database.
#[endpoint(tags("health"), status_codes(200), responses((status_code = 200, body = HealthView)))]
pub async fn live(res: &mut Response) {
    res.render(Json(HealthView {
        status: "ok",
        database: None,
        migrations: None,
    }));
}

/// Ready for traffic: database reachable within 2 s and fully migrated; 503 otherwise or while draining.
#[endpoint(tags("health"), status_codes(200, 503), responses((status_code = 200, body = HealthView), (status_code = 503, body = HealthView)))]
pub async fn ready(depot: &mut Depot, res: &mut Response) {
    let (status, view) = match app_state(depot) {
        Ok(state) if state.is_draining() => (
            StatusCode::SERVICE_UNAVAILABLE,
            HealthView {
                status: "draining",
                database: None,
                migrations: None,
            },
        ),
        Ok(state) => {
            let pending = tokio::time::timeout(READY_DB_TIMEOUT, async {
                state.db.ping().await?;
                db::pending_migrations(&state.db).await
            })
            .await;
            match pending {
                Ok(Ok(0)) => (
                    StatusCode::OK,
                    HealthView {
                        status: "ready",
                        database: Some("ok"),
                        migrations: Some("applied"),
                    },
                ),
                Ok(Ok(_)) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    HealthView {
                        status: "unavailable",
                        database: Some("ok"),
                        migrations: Some("pending"),
                    },
                ),
                Ok(Err(_)) | Err(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    HealthView {
                        status: "unavailable",
                        database: Some("unreachable"),
                        migrations: None,
                    },
                ),
            }
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            HealthView {
                status: "unavailable",
                database: None,
                migrations: None,
            },
        ),
    };
    res.status_code(status);
    res.render(Json(view));
}
