//! Request extractors that fail with [`AppError`] (and so with problem+json) instead of
//! salvo's defaults, and that document themselves in the OpenAPI spec.

use salvo::extract::{Extractible, Metadata};
use salvo::http::ParseError;
use salvo::http::mime;
use salvo::oapi::{
    Components, Content, EndpointArgRegister, Operation, Parameter, ParameterIn, RequestBody,
    Required, ToParameters, ToSchema,
};
use salvo::prelude::*;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::error::AppError;
use crate::state::AppState;

/// Bodies larger than this are refused when no state is available (tests of extractors alone).
const FALLBACK_BODY_LIMIT: usize = 1024 * 1024;

/// A JSON request body, parsed strictly: wrong content type -> 415, too large -> 413,
/// broken JSON -> 400, well-formed JSON of the wrong shape (unknown field, wrong type) -> 422.
#[derive(Debug)]
pub struct Payload<T>(pub T);

fn empty_metadata() -> &'static Metadata {
    static METADATA: Metadata = Metadata::new("");
    &METADATA
}

impl<'ex, T> Extractible<'ex> for Payload<T>
where
    T: DeserializeOwned + Send,
{
    fn metadata() -> &'static Metadata {
        empty_metadata()
    }

    #[allow(refining_impl_trait)]
    async fn extract(req: &'ex mut Request, depot: &'ex mut Depot) -> Result<Self, AppError> {
        let is_json = req
            .content_type()
            .is_some_and(|ct| ct.subtype() == mime::JSON || ct.suffix() == Some(mime::JSON));
        if !is_json {
            return Err(AppError::UnsupportedMediaType);
        }
        parse_json(read_body(req, depot).await?).map(Payload)
    }

    #[allow(refining_impl_trait)]
    async fn extract_with_arg(
        req: &'ex mut Request,
        depot: &'ex mut Depot,
        _arg: &str,
    ) -> Result<Self, AppError> {
        Self::extract(req, depot).await
    }
}

/// The request body, read whole (at most `server.body_limit_bytes`) on the first call and
/// kept in the request for later ones: too large -> 413, cut off or broken -> 400.
pub async fn read_body<'r>(req: &'r mut Request, depot: &Depot) -> Result<&'r [u8], AppError> {
    let limit = depot
        .get_typed::<AppState>()
        .map(|state| state.settings.server.body_limit_bytes)
        .unwrap_or(FALLBACK_BODY_LIMIT);
    read_body_within(req, limit).await
}

/// [`read_body`] with the limit given.
pub async fn read_body_within(req: &mut Request, limit: usize) -> Result<&[u8], AppError> {
    match req.payload_with_max_size(limit).await {
        Ok(bytes) => Ok(bytes),
        Err(ParseError::PayloadTooLarge) => Err(AppError::PayloadTooLarge(limit)),
        Err(_) => Err(AppError::BadRequest(
            "The request body could not be read.".into(),
        )),
    }
}

/// Parses a JSON document, distinguishing broken syntax (400) from a wrong shape (422).
/// A shape error names the offending field, so clients can show it next to the input.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    // serde_json's recursion limit (128) already refuses pathologically deep documents.
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        use serde_json::error::Category;
        let field = field_of(&err.path().to_string(), &err.inner().to_string());
        let inner = err.into_inner();
        match inner.classify() {
            Category::Data => AppError::validation(&field, strip_position(&inner.to_string())),
            // serde_json reports some type mismatches (a number where an enum string
            // belongs) as syntax errors; only a document that is not JSON at all is a 400.
            Category::Syntax if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() => {
                AppError::validation(&field, strip_position(&inner.to_string()))
            }
            Category::Syntax | Category::Eof | Category::Io => {
                AppError::BadRequest(format!("The body is not valid JSON: {inner}"))
            }
        }
    })?;
    // Trailing garbage after the document is a syntax error too.
    deserializer
        .end()
        .map_err(|err| AppError::BadRequest(format!("The body is not valid JSON: {err}")))?;
    // serde would also fill a struct from an array (`[null, null]`); bodies are objects.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(AppError::validation("body", "must be a JSON object"));
    }
    Ok(value)
}

/// The field an error is about: its path (unknown fields included), or for a missing
/// field (reported at its parent) the name quoted in the message; "body" for the root.
fn field_of(path: &str, message: &str) -> String {
    let at_root = path.is_empty() || path == ".";
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name);
    match (missing, at_root) {
        (Some(name), true) => name.to_string(),
        (Some(name), false) => format!("{path}.{name}"),
        (None, true) => "body".into(),
        (None, false) => path.to_string(),
    }
}

/// "unknown field `role`, expected … at line 1 column 9" -> "unknown field `role`, expected …".
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(idx) => message[..idx].to_string(),
        None => message.to_string(),
    }
}

impl<T: ToSchema> EndpointArgRegister for Payload<T> {
    fn register(components: &mut Components, operation: &mut Operation, _arg: &str) {
        let body = RequestBody::new()
            .add_content("application/json", Content::new(T::to_schema(components)))
            .required(Required::True);
        operation.request_body = Some(body);
    }
}

/// Query-string parameters; anything that does not parse is a 422 naming the parameter.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<'ex, T> Extractible<'ex> for Query<T>
where
    T: ToParameters<'ex> + DeserializeOwned + Send,
{
    fn metadata() -> &'static Metadata {
        T::metadata()
    }

    #[allow(refining_impl_trait)]
    async fn extract(req: &'ex mut Request, _depot: &'ex mut Depot) -> Result<Self, AppError> {
        let query = req.uri().query().unwrap_or("");
        parse_query(query).map(Query)
    }

    #[allow(refining_impl_trait)]
    async fn extract_with_arg(
        req: &'ex mut Request,
        depot: &'ex mut Depot,
        _arg: &str,
    ) -> Result<Self, AppError> {
        Self::extract(req, depot).await
    }
}

/// `query` with the values of each repeated [`REPEATABLE`] parameter joined by commas into
/// its first place; `None` when nothing repeats (the query is parsed as it came).
fn merge_repeated(query: &str) -> Option<String> {
    let repeats = REPEATABLE.iter().any(|name| {
        form_urlencoded::parse(query.as_bytes())
            .filter(|(key, _)| key == name)
            .count()
            > 1
    });
    if !repeats {
        return None;
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let earlier = REPEATABLE
            .contains(&key.as_ref())
            .then(|| pairs.iter_mut().find(|(seen, _)| *seen == key))
            .flatten();
        match earlier {
            Some((_, values)) => {
                values.push(',');
                values.push_str(&value);
            }
            None => pairs.push((key.into_owned(), value.into_owned())),
        }
    }
    Some(
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish(),
    )
}

/// Query parameters that may be repeated (`label=a&label=b`): their values reach the
/// query type joined by commas, in one string it splits. Any other repeated parameter is a
/// 422 ("duplicate field").
const REPEATABLE: [&str; 1] = ["label"];

pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, AppError> {
    let merged = merge_repeated(query);
    let pairs = form_urlencoded::parse(merged.as_deref().unwrap_or(query).as_bytes());
    serde_path_to_error::deserialize(serde_urlencoded::Deserializer::new(pairs)).map_err(|err| {
        let message = err.inner().to_string();
        let field = field_of(&err.path().to_string(), &message);
        let field = if field == "body" {
            "query".to_string()
        } else {
            field
        };
        AppError::validation(&field, format!("invalid query parameter: {message}"))
    })
}

impl<T: EndpointArgRegister> EndpointArgRegister for Query<T> {
    fn register(components: &mut Components, operation: &mut Operation, arg: &str) {
        T::register(components, operation, arg);
    }
}

/// The `{id}` path segment as a UUID. A malformed id cannot name any resource, so it is a
/// 404 (detail "Resource not found.", whatever the route).
#[derive(Debug, Clone, Copy)]
pub struct ResourceId(pub Uuid);

impl<'ex> Extractible<'ex> for ResourceId {
    fn metadata() -> &'static Metadata {
        empty_metadata()
    }

    #[allow(refining_impl_trait)]
    async fn extract(req: &'ex mut Request, _depot: &'ex mut Depot) -> Result<Self, AppError> {
        req.param::<String>("id")
            .and_then(|raw| Uuid::parse_str(&raw).ok())
            .map(ResourceId)
            .ok_or(AppError::NotFound("Resource"))
    }

    #[allow(refining_impl_trait)]
    async fn extract_with_arg(
        req: &'ex mut Request,
        depot: &'ex mut Depot,
        _arg: &str,
    ) -> Result<Self, AppError> {
        Self::extract(req, depot).await
    }
}

impl EndpointArgRegister for ResourceId {
    fn register(components: &mut Components, operation: &mut Operation, _arg: &str) {
        operation.parameters.insert(
            Parameter::new("id")
                .location(ParameterIn::Path)
                .description("Resource id (UUID)")
                .schema(Uuid::to_schema(components))
                .required(Required::True),
        );
    }
}

/// The application state as a handler argument: a clone (pool handle and `Arc`s) of the
/// copy the `affix-state` hoop puts into every depot. Not part of the request, so it adds
/// nothing to the OpenAPI spec.
impl<'ex> Extractible<'ex> for AppState {
    fn metadata() -> &'static Metadata {
        empty_metadata()
    }

    #[allow(refining_impl_trait)]
    async fn extract(_req: &'ex mut Request, depot: &'ex mut Depot) -> Result<Self, AppError> {
        AppState::from_depot(depot).cloned()
    }

    #[allow(refining_impl_trait)]
    async fn extract_with_arg(
        req: &'ex mut Request,
        depot: &'ex mut Depot,
        _arg: &str,
    ) -> Result<Self, AppError> {
        Self::extract(req, depot).await
    }
}

impl EndpointArgRegister for AppState {
    fn register(_components: &mut Components, _operation: &mut Operation, _arg: &str) {}
}

/// The authenticated caller as a handler argument, put into the depot by the
/// `routes::guard::authenticate` hoop; 401 on a route without that hoop.
impl<'ex> Extractible<'ex> for CurrentUser {
    fn metadata() -> &'static Metadata {
        empty_metadata()
    }

    #[allow(refining_impl_trait)]
    async fn extract(_req: &'ex mut Request, depot: &'ex mut Depot) -> Result<Self, AppError> {
        CurrentUser::from_depot(depot)
    }

    #[allow(refining_impl_trait)]
    async fn extract_with_arg(
        req: &'ex mut Request,
        depot: &'ex mut Depot,
        _arg: &str,
    ) -> Result<Self, AppError> {
        Self::extract(req, depot).await
    }
}

impl EndpointArgRegister for CurrentUser {
    fn register(_components: &mut Components, _operation: &mut Operation, _arg: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
    }

    #[test]
    fn syntax_errors_are_400_and_shape_errors_are_422() {
        let broken = parse_json::<Body>(b"{\"name\": ").unwrap_err();
        assert_eq!(broken.status().as_u16(), 400);
        let smuggled = parse_json::<Body>(br#"{"name":"a","role":"admin"}"#).unwrap_err();
        assert_eq!(
            smuggled.to_problem().errors.expect("fields")[0].field,
            "role"
        );
        let wrong_type = parse_json::<Body>(br#"{"name":5}"#).unwrap_err();
        assert_eq!(
            wrong_type.to_problem().errors.expect("fields")[0].field,
            "name"
        );
        let missing = parse_json::<Body>(b"{}").unwrap_err();
        assert_eq!(
            missing.to_problem().errors.expect("fields")[0].field,
            "name"
        );
        let trailing = parse_json::<Body>(br#"{"name":"a"} x"#).unwrap_err();
        assert_eq!(trailing.status().as_u16(), 400);
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        let deep = "[".repeat(100_000);
        assert!(parse_json::<serde_json::Value>(deep.as_bytes()).is_err());
    }
}
