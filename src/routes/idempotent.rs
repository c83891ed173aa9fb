//! The HTTP side of idempotent creates (`models::idempotency` holds the rules): reading and
//! validating `Idempotency-Key`, fingerprinting the body, and writing a stored response
//! (with `Idempotent-Replayed: true` when it is a replay).

use salvo::http::{HeaderValue, StatusCode, header};
use salvo::oapi::{self, Components, EndpointOutRegister, Operation, ToSchema};
use salvo::prelude::*;
use serde::Serialize;

use crate::error::{AppError, Result};
use crate::models::idempotency::{
    self, Claim, HEADER, IdempotencyKey, Once, REPLAYED_HEADER, Scope, StoredResponse,
};
use crate::state::AppState;

/// The claim of a request that carries `Idempotency-Key` (`None` without one). Call after
/// the body extractor: the body it read is cached on the request and fingerprinted here.
pub async fn claim(req: &mut Request, state: &AppState, scope: Scope) -> Result<Option<Claim>> {
    let values = req
        .headers()
        .get_all(HEADER)
        .iter()
        .map(HeaderValue::as_bytes);
    let Some(key) = IdempotencyKey::from_values(values)? else {
        return Ok(None);
    };
    // Already read (and cached in the request) by the time a handler claims.
    let body =
        crate::extract::read_body_within(req, state.settings.server.body_limit_bytes).await?;
    let fingerprint =
        idempotency::fingerprint(&state.jwt.derived.request_fingerprint, scope, body)?;
    Ok(Some(Claim {
        scope,
        key,
        fingerprint,
    }))
}

/// The response to store for a create: exactly the bytes and headers a fresh response has.
pub fn stored<T: Serialize>(
    status: StatusCode,
    location: String,
    etag: Option<String>,
    body: &T,
) -> Result<StoredResponse> {
    let body = serde_json::to_string(body).map_err(|err| AppError::Internal(err.into()))?;
    Ok(StoredResponse {
        status: status.as_u16(),
        body,
        location: Some(location),
        etag,
    })
}

/// The answer of an idempotent create (`models::idempotency::Once`), and what it created
/// now (`None` for a replay, which created nothing and announces nothing).
pub fn answer<T, W>(once: Once<T>) -> (Option<T>, Idempotent<W>) {
    match once {
        Once::Created(created, response) => (
            Some(created),
            Idempotent::Stored {
                response,
                replayed: false,
            },
        ),
        Once::Replayed(response) => (
            None,
            Idempotent::Stored {
                response,
                replayed: true,
            },
        ),
    }
}

/// A create answered without a key (`Fresh`), or from its key row: first time or replay.
pub enum Idempotent<T> {
    Fresh(T),
    Stored {
        response: StoredResponse,
        replayed: bool,
    },
}

#[async_trait]
impl<T: Writer + Send> Writer for Idempotent<T> {
    async fn write(self, req: &mut Request, depot: &mut Depot, res: &mut Response) {
        let (response, replayed) = match self {
            Idempotent::Fresh(inner) => return inner.write(req, depot, res).await,
            Idempotent::Stored { response, replayed } => (response, replayed),
        };
        let headers = res.headers_mut();
        for (name, value) in [
            (header::LOCATION, response.location),
            (header::ETAG, response.etag),
        ] {
            if let Some(value) = value.and_then(|value| HeaderValue::from_str(&value).ok()) {
                headers.insert(name, value);
            }
        }
        if replayed {
            headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        res.status_code(StatusCode::from_u16(response.status).unwrap_or(StatusCode::CREATED));
        let _ = res.write_body(response.body.into_bytes());
    }
}

/// Documents what `T` documents, plus the replay header on its 201.
impl<T: EndpointOutRegister> EndpointOutRegister for Idempotent<T> {
    fn register(components: &mut Components, operation: &mut Operation) {
        T::register(components, operation);
        for (status, response) in operation.responses.iter_mut() {
            if status != "201" {
                continue;
            }
            if let oapi::RefOr::Type(response) = response {
                response.headers.insert(
                    REPLAYED_HEADER.to_string(),
                    oapi::Header::new(bool::to_schema(components)).description(
                        "`true` when this is the stored response of an earlier request with the same Idempotency-Key and body (nothing was created now); absent otherwise",
                    ),
                );
            }
        }
    }
}
