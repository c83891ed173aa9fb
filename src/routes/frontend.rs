//! The web front end and the API documentation pages.
//!
//! The front end (`static/`) is compiled into the binary, so one executable serves it
//! whatever its working directory; `server.static_dir` switches to serving a directory
//! from disk instead (front-end development without rebuilding).

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rust_embed::RustEmbed;
use salvo::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use salvo::http::{HeaderValue, ResBody, StatusCode};
use salvo::prelude::*;
use sha2::{Digest, Sha256};

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

/// Serves the embedded front end: `path` relative to `static/`, a directory (or the root)
/// meaning its `index.html`. Unknown paths fall through as 404 (the catcher's problem+json).
pub struct EmbeddedFrontEnd;

fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map_or("", |(_, ext)| ext);
    match extension.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        // The registered type, as the directory mode (mime_guess) sends it too.
        "ico" => "image/vnd.microsoft.icon",
        "png" => "image/png",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// The embedded file a request path names, if any. `..` never names anything (the
/// embedded set has no parent to escape to, but such paths are refused outright).
fn lookup(path: &str) -> Option<(String, rust_embed::EmbeddedFile)> {
    let path = path.trim_start_matches('/');
    if path.split(['/', '\\']).any(|segment| segment == "..") {
        return None;
    }
    let path = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_string()
    };
    Assets::get(&path).map(|file| (path, file))
}

#[async_trait]
impl Handler for EmbeddedFrontEnd {
    async fn handle(
        &self,
        req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        let Some((path, file)) = lookup(req.uri().path()) else {
            res.status_code(StatusCode::NOT_FOUND);
            return;
        };
        // The content hash is a strong validator that changes exactly when the build does.
        let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
        let headers = res.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&etag) {
            headers.insert(ETAG, value);
        }
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(&path)));
        let fresh = req
            .headers()
            .get(IF_NONE_MATCH)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
        if fresh {
            res.status_code(StatusCode::NOT_MODIFIED);
            return;
        }
        res.status_code(StatusCode::OK);
        let body = match file.data {
            Cow::Borrowed(bytes) => salvo::hyper::body::Bytes::from_static(bytes),
            Cow::Owned(bytes) => salvo::hyper::body::Bytes::from(bytes),
        };
        res.body(ResBody::Once(body));
    }
}

/// Swagger UI needs its inline bootstrap `<script>`; rather than `'unsafe-inline'`, every
/// inline script of the page is allowed by its SHA-256 (computed from the page actually
/// served, so a Swagger UI upgrade cannot silently break or loosen the policy). Styles
/// keep `'unsafe-inline'`: Swagger UI renders style attributes, and CSS cannot run code.
fn apidocs_policy(script_hashes: &[String]) -> String {
    let mut scripts = String::from("'self'");
    for hash in script_hashes {
        scripts.push_str(" 'sha256-");
        scripts.push_str(hash);
        scripts.push('\'');
    }
    format!(
        "default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    )
}

/// Base64 SHA-256 of the body of every `<script>` without a `src` in `html`.
fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        rest = &rest[start + "<script".len()..];
        let Some(tag_end) = rest.find('>') else { break };
        let attributes = &rest[..tag_end];
        rest = &rest[tag_end + 1..];
        let Some(close) = rest.find("</script>") else {
            break;
        };
        if !attributes.contains("src=") {
            hashes.push(STANDARD.encode(Sha256::digest(&rest.as_bytes()[..close])));
        }
        rest = &rest[close..];
    }
    hashes
}

/// Security headers for `/apidocs` (the HTML page, its assets and the spec): a CSP that
/// forbids framing and foreign code, and `X-Frame-Options` for older browsers.
#[handler]
pub async fn apidocs_headers(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    ctrl.call_next(req, depot, res).await;
    let hashes = match &res.body {
        ResBody::Once(bytes) => std::str::from_utf8(bytes)
            .map(inline_script_hashes)
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let headers = res.headers_mut();
    if let Ok(policy) = HeaderValue::from_str(&apidocs_policy(&hashes)) {
        headers.insert("content-security-policy", policy);
    }
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_paths_resolve_like_a_static_directory() {
        assert_eq!(lookup("/").map(|(p, _)| p).as_deref(), Some("index.html"));
        assert_eq!(
            lookup("/favicon.ico").map(|(p, _)| p).as_deref(),
            Some("favicon.ico")
        );
        assert!(lookup("/js/app.js").is_some());
        assert!(lookup("/js/../index.html").is_none());
        assert!(lookup("/nope.txt").is_none());
        assert_eq!(content_type("js/app.js"), "text/javascript; charset=utf-8");
    }

    #[test]
    fn only_inline_scripts_are_hashed() {
        let html =
            r#"<script src="a.js"></script><script>go()</script><script type="x">b</script>"#;
        let hashes = inline_script_hashes(html);
        assert_eq!(hashes.len(), 2);
        assert_eq!(hashes[0], STANDARD.encode(Sha256::digest(b"go()")));
    }
}
