//! Layered configuration: built-in defaults < TOML file (`TASKAPI_CONFIG`) < `.env` <
//! environment (`TASKAPI_*`, `__` for nesting), plus the conventional `DATABASE_URL`
//! and `JWT_SECRET_KEY` variables that most platforms inject.
//!
//! A key that names no setting (a TOML key, or a `TASKAPI_*` variable not in
//! [`NOT_SETTINGS`]) is refused, named as it was written, with the nearest valid key.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile as FigmentProfile, Provider};
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Shortest accepted HMAC secret: HS256 keys shorter than the hash output weaken it (RFC 7518 §3.2).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Development,
    Production,
}

/// Every section denies unknown fields: `from_figment` names an unknown key better, with
/// the nearest valid one, but serde's own field lists back it up (and a test compares them).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub profile: Profile,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub log: LogSettings,
    pub limits: LimitSettings,
    pub redis: RedisSettings,
    /// The change feed (`GET /api/v1/tasks/events`).
    #[serde(default)]
    pub events: EventSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Serve `/metrics` on this separate port instead of the API port, when set.
    pub metrics_port: Option<u16>,
    /// Serve the front end from this directory instead of the copy embedded in the
    /// binary (front-end development); empty (the default) serves the embedded copy.
    pub static_dir: PathBuf,
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
    /// How long in-flight requests may run after SIGTERM before the server stops them.
    pub shutdown_grace_secs: u64,
    /// Run pending migrations at start-up; Kubernetes turns this off and uses a Job instead.
    pub migrate_on_start: bool,
    /// After SIGTERM, keep accepting and serving (readiness already 503) this long before
    /// closing the listener, so load balancers see the instance leave before it refuses
    /// connections (like a preStop sleep). 0 closes the listener at once.
    #[serde(default)]
    pub shutdown_drain_delay_secs: u64,
    /// Peers (CIDRs) allowed to say who the client is through `forwarded_header`; empty
    /// means the TCP peer is always the client. A comma-separated string is accepted too.
    #[serde(deserialize_with = "cidr_list")]
    pub trusted_proxies: Vec<IpNet>,
    /// Web origins (`https://app.example.com`) whose pages may call the API from a browser
    /// (CORS); none by default, so only same-origin pages (the bundled front end) can. A
    /// comma-separated string is accepted too. Tokens travel in `Authorization`, never in
    /// cookies, so no origin is ever sent `Access-Control-Allow-Credentials`.
    #[serde(default, deserialize_with = "origin_list")]
    pub cors_allowed_origins: Vec<String>,
    /// Which header the trusted proxies set: `x-forwarded-for` or `forwarded` (RFC 7239).
    /// Only one is read, so a client cannot smuggle the other through a proxy that
    /// appends to one and passes the other on untouched.
    pub forwarded_header: ForwardedHeader,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    XForwardedFor,
    Forwarded,
}

/// Accepts `["10.0.0.0/8", "127.0.0.1"]` or `"10.0.0.0/8, 127.0.0.1"` (what an
/// environment variable can carry); a bare address means a single host.
/// The non-empty, trimmed items of a setting given as a list or as comma-separated text
/// (what an environment variable can hold).
fn list_items<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Text(String),
    }
    let items: Vec<String> = match Raw::deserialize(deserializer)? {
        Raw::List(items) => items,
        Raw::Text(text) => text.split(',').map(str::to_string).collect(),
    };
    Ok(items
        .iter()
        .map(|item| item.trim())
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect())
}

fn cidr_list<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    list_items(deserializer)?
        .iter()
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!("not a CIDR or IP address: {item:?}"))
                })
        })
        .collect()
}

/// `scheme://host[:port]` origins, from a list or comma-separated text; a trailing slash,
/// a path or `*` is refused (a wildcard would let every site read a user's tasks with a
/// token it holds).
fn origin_list<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    list_items(deserializer)?
        .into_iter()
        .map(|item| {
            let origin = url::Url::parse(&item)
                .ok()
                .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
                .map(|url| url.origin().ascii_serialization())
                .filter(|origin| *origin == item);
            origin.ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "not an origin (scheme://host[:port], no path): {item:?}"
                ))
            })
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://…` or `sqlite://…`; empty means the embedded SQLite file under `./data/`.
    /// Holds a password: never printed whole (see [`SecretUrl`]).
    pub url: SecretUrl,
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout_secs: u64,
    pub sql_logging: bool,
    /// PostgreSQL `statement_timeout` set on every pooled connection; 0 disables.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
    /// Client-side deadline: a request still running after this long pings the database,
    /// and if the ping gets no answer either, it ends with 503 instead of waiting for the
    /// request timeout (a stalled server or network is not covered by `statement_timeout`).
    /// 0 disables.
    #[serde(default = "default_stall_check_after_ms")]
    pub stall_check_after_ms: u64,
}

fn default_statement_timeout_ms() -> u64 {
    5_000
}

fn default_stall_check_after_ms() -> u64 {
    3_000
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Never printed: `Debug` shows `[REDACTED]`, serialisation writes `<redacted>`.
    #[serde(serialize_with = "redacted_secret")]
    pub jwt_secret: Option<SecretString>,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// Concurrent argon2 computations; 0 means one per CPU core.
    pub hash_concurrency: usize,
    /// How long an account's auth state may be served from memory (see `auth::cache`); 0 disables.
    pub state_cache_ttl_ms: u64,
    /// Seconds an access token is still accepted past its `exp`: clock skew between the
    /// replica that issued it and the one checking it.
    #[serde(default = "default_clock_skew_secs")]
    pub clock_skew_secs: u64,
}

fn default_clock_skew_secs() -> u64 {
    5
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `RUST_LOG`-style directives; `RUST_LOG` itself wins when set.
    pub level: String,
    /// Write logs to stdout at all (containers read them there).
    pub stdout: bool,
    /// Bunyan JSON on stdout; `false` gives compact human-readable lines.
    pub json_stdout: bool,
    pub file_enabled: bool,
    pub dir: PathBuf,
    pub file_name: String,
    pub max_files: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// Requests per minute per client IP on register/login/refresh.
    pub auth_per_ip_per_minute: u32,
    /// Requests per minute per authenticated user on every other route.
    pub per_user_per_minute: u32,
    /// Failed logins on one account before it is throttled.
    pub login_failures_before_lock: u32,
    /// First lock duration; it doubles with each further failure, up to `login_lock_max_secs`.
    pub login_lock_base_secs: u64,
    pub login_lock_max_secs: u64,
    /// Failed logins for one account, across every address that has not logged in to it
    /// successfully before, within `account_window_secs`, before such addresses are refused.
    pub account_failures_before_lock: u32,
    pub account_window_secs: u64,
    /// Consecutive wrong current passwords on `POST /auth/password` before every session
    /// of the account is revoked (the caller may hold a stolen token).
    pub password_failures_before_revoke: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://…` (or `REDIS_URL`); unset keeps every limit and the revocation fan-out in
    /// this process only, which is right for a single instance and wrong for replicas.
    /// May hold a password: never printed whole (see [`SecretUrl`]).
    pub url: Option<SecretUrl>,
    /// Prefix of every key and channel, so that several deployments can share one Redis.
    pub key_prefix: String,
    /// Budget of one Redis command; past it the request falls back to local limits.
    pub command_timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventSettings {
    /// Seconds between `: keep-alive` comments on an idle stream, so that proxies and
    /// load balancers do not close it as idle (keep below their idle timeouts).
    pub heartbeat_secs: u64,
    /// The `retry:` hint (milliseconds) a client waits before reconnecting.
    pub retry_ms: u64,
    /// Open streams per user on one replica; more get 429.
    pub max_streams_per_user: usize,
    /// Open streams on one replica, of all users together; more get 503 with
    /// `Retry-After` (the client reconnects, through the balancer, perhaps elsewhere).
    pub max_streams_per_replica: usize,
    /// A stream whose client has taken nothing for this long while an event waits is
    /// closed (a client that stopped reading would otherwise hold its buffers, and its
    /// stream would outlive its token).
    pub write_timeout_secs: u64,
    /// How long events are kept for reconnects (`Last-Event-ID`)...
    pub retention_secs: u64,
    /// ...and at most this many per user; older gaps get `reset`.
    pub max_events_per_user: u64,
    /// How often old events are pruned.
    pub prune_every_secs: u64,
    /// How often this replica reads the table for its streams' users (one statement for
    /// all of them) while it is not subscribed to the other replicas' notifications (Redis
    /// down or reconnecting).
    pub poll_ms: u64,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            heartbeat_secs: 15,
            retry_ms: 2_000,
            max_streams_per_user: 5,
            max_streams_per_replica: 1_000,
            write_timeout_secs: 30,
            retention_secs: 24 * 3600,
            max_events_per_user: 1_000,
            prune_every_secs: 300,
            poll_ms: 500,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            profile: Profile::Development,
            server: ServerSettings {
                host: "127.0.0.1".into(),
                port: 8080,
                metrics_port: None,
                static_dir: PathBuf::new(),
                body_limit_bytes: 1024 * 1024,
                request_timeout_secs: 30,
                shutdown_grace_secs: 20,
                migrate_on_start: true,
                shutdown_drain_delay_secs: 0,
                trusted_proxies: Vec::new(),
                cors_allowed_origins: Vec::new(),
                forwarded_header: ForwardedHeader::XForwardedFor,
            },
            database: DatabaseSettings {
                url: SecretUrl::default(),
                max_connections: 16,
                min_connections: 1,
                acquire_timeout_secs: 5,
                sql_logging: false,
                statement_timeout_ms: default_statement_timeout_ms(),
                stall_check_after_ms: default_stall_check_after_ms(),
            },
            auth: AuthSettings {
                jwt_secret: None,
                issuer: "taskapi".into(),
                audience: "taskapi".into(),
                access_token_ttl_secs: 15 * 60,
                refresh_token_ttl_secs: 14 * 24 * 3600,
                hash_concurrency: 0,
                state_cache_ttl_ms: 1000,
                clock_skew_secs: default_clock_skew_secs(),
            },
            log: LogSettings {
                level: "info".into(),
                stdout: true,
                json_stdout: true,
                file_enabled: true,
                dir: PathBuf::from("logs"),
                file_name: "app.log".into(),
                max_files: 7,
            },
            limits: LimitSettings {
                auth_per_ip_per_minute: 30,
                per_user_per_minute: 600,
                login_failures_before_lock: 5,
                login_lock_base_secs: 30,
                login_lock_max_secs: 15 * 60,
                account_failures_before_lock: 20,
                account_window_secs: 15 * 60,
                password_failures_before_revoke: 10,
            },
            redis: RedisSettings {
                url: None,
                key_prefix: "taskapi:".into(),
                command_timeout_ms: 250,
            },
            events: EventSettings::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Figment(#[from] Box<figment::Error>),
    #[error("invalid configuration: {}", list_unknown(.0))]
    UnknownKeys(Vec<UnknownKey>),
    #[error(
        "JWT secret is {0} bytes; at least {MIN_JWT_SECRET_BYTES} are required (set JWT_SECRET_KEY)"
    )]
    SecretTooShort(usize),
    #[error("the production profile requires an explicit JWT secret (set JWT_SECRET_KEY)")]
    SecretMissingInProduction,
}

/// The prefix of the environment variables that hold settings (`TASKAPI_SERVER__PORT` is
/// `server.port`); `__` separates the levels.
pub const ENV_PREFIX: &str = "TASKAPI_";
const ENV_SEPARATOR: &str = "__";

/// The `TASKAPI_*` environment variables that are not settings: they are neither read as
/// settings nor refused as unknown ones. Every other `TASKAPI_*` variable must name a
/// setting, so keep this list to what something really sets.
pub const NOT_SETTINGS: &[&str] = &[
    // The TOML file to read (`Settings::figment`).
    "TASKAPI_CONFIG",
    // `taskapi create-admin`'s password (cli.rs).
    "TASKAPI_ADMIN_PASSWORD",
    // Docker Compose interpolates these from the `.env` that the binary reads as well
    // (.env.example): the API's host port, HAProxy's statistics port and the compose
    // network's subnet (docker-compose*.yml).
    "TASKAPI_HTTP_PORT",
    "TASKAPI_LB_STATS_PORT",
    "TASKAPI_COMPOSE_SUBNET",
    // The CI, cluster and bench scripts (.ci/, deploy/): the binary under test and the
    // directory of their tools; exported to the processes they start.
    "TASKAPI_BIN",
    "TASKAPI_TOOLS_DIR",
];

/// Whether `key`, the part of a `TASKAPI_*` name after the prefix, is one of [`NOT_SETTINGS`]
/// (case-insensitively, as figment matches the prefix).
fn is_not_setting(key: &str) -> bool {
    NOT_SETTINGS.iter().any(|name| {
        name.strip_prefix(ENV_PREFIX)
            .is_some_and(|rest| rest.eq_ignore_ascii_case(key))
    })
}

/// A provider whose keys are shown as `show` writes them, in figment's errors and in ours
/// (figment's default shows the profile too: `default.server.port`), under `name` if set.
struct KeysShown<P> {
    provider: P,
    name: Option<&'static str>,
    show: fn(&[&str]) -> String,
}

impl<P: Provider> Provider for KeysShown<P> {
    fn metadata(&self) -> Metadata {
        let mut metadata = self.provider.metadata();
        if let Some(name) = self.name {
            metadata.name = name.into();
        }
        let show = self.show;
        metadata.interpolater(move |_, keys: &[&str]| show(keys))
    }

    fn data(&self) -> Result<Map<FigmentProfile, Dict>, figment::Error> {
        self.provider.data()
    }

    fn profile(&self) -> Option<FigmentProfile> {
        self.provider.profile()
    }
}

/// A TOML file's keys as written there: `server.port`.
fn toml_file(path: String) -> KeysShown<figment::providers::Data<Toml>> {
    KeysShown {
        provider: Toml::file_exact(path),
        name: None,
        show: |keys| keys.join("."),
    }
}

/// The `TASKAPI_*` variables but [`NOT_SETTINGS`], their keys shown as the variables' names:
/// `server.port` as `TASKAPI_SERVER__PORT`.
fn prefixed_env() -> KeysShown<Env> {
    KeysShown {
        provider: Env::prefixed(ENV_PREFIX)
            .filter(|key| !is_not_setting(key.as_str()))
            .split(ENV_SEPARATOR),
        name: Some("the environment or .env"),
        show: |keys| {
            let upper: Vec<String> = keys.iter().map(|key| key.to_ascii_uppercase()).collect();
            format!("{ENV_PREFIX}{}", upper.join(ENV_SEPARATOR))
        },
    }
}

/// A key that names no setting: as it was written (`TASKAPI_SERVRE__PORT`, `servre.port`),
/// where (`the environment or .env`, `TOML file taskapi.toml`), and the valid key nearest
/// to it, written the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    pub key: String,
    pub origin: String,
    pub nearest: String,
}

impl std::fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown setting `{}` in {}: did you mean `{}`?",
            self.key, self.origin, self.nearest
        )
    }
}

fn list_unknown(keys: &[UnknownKey]) -> String {
    keys.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every key [`Settings`] has, dotted (`server.port`): its sections and its leaves. Taken
/// from the serialised defaults, where an unset `Option` is still a key (`null`); a test
/// checks the set against the fields serde accepts.
struct KnownKeys {
    sections: BTreeSet<String>,
    leaves: BTreeSet<String>,
}

static KNOWN_KEYS: LazyLock<KnownKeys> = LazyLock::new(|| {
    fn walk(prefix: &str, value: &serde_json::Value, known: &mut KnownKeys) {
        let serde_json::Value::Object(fields) = value else {
            return;
        };
        for (name, value) in fields {
            let key = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            if value.is_object() {
                walk(&key, value, known);
                known.sections.insert(key);
            } else {
                known.leaves.insert(key);
            }
        }
    }
    let defaults = serde_json::to_value(Settings::default()).expect("the defaults serialise");
    let mut known = KnownKeys {
        sections: BTreeSet::new(),
        leaves: BTreeSet::new(),
    };
    walk("", &defaults, &mut known);
    known
});

/// The valid key (dotted) nearest to `unknown`: the fewest edits (a swap of two letters is
/// one), where a key of the same name in another section (`migrate_on_start` for
/// `server.migrate_on_start`) counts as one edit; ties go to the nearer whole key.
fn nearest_key(unknown: &str) -> &'static str {
    let last = |key: &str| key.rsplit('.').next().unwrap_or_default().to_string();
    let unknown_last = last(unknown);
    let known = &*KNOWN_KEYS;
    known
        .leaves
        .iter()
        .chain(&known.sections)
        .min_by_key(|key| {
            let whole = strsim::damerau_levenshtein(unknown, key);
            let moved = strsim::damerau_levenshtein(&unknown_last, &last(key)) + 1;
            (whole.min(moved), whole)
        })
        .map_or("", String::as_str)
}

/// Every key of `figment` that names no setting, in key order. A section holding unknown
/// keys (`[servre]`) is reported key by key (`servre.port`), as each was written.
fn unknown_keys(figment: &Figment) -> Result<Vec<UnknownKey>, Box<figment::Error>> {
    fn visit(figment: &Figment, path: &mut Vec<String>, dict: &Dict, out: &mut Vec<UnknownKey>) {
        for (name, value) in dict {
            path.push(name.clone());
            let key = path.join(".");
            if KNOWN_KEYS.sections.contains(&key) {
                // Anything but a table there is a type error, which extraction reports.
                if let Value::Dict(_, inner) = value {
                    visit(figment, path, inner, out);
                }
            } else if !KNOWN_KEYS.leaves.contains(&key) {
                report(figment, path, value, out);
            }
            path.pop();
        }
    }
    fn report(figment: &Figment, path: &mut Vec<String>, value: &Value, out: &mut Vec<UnknownKey>) {
        if let Value::Dict(_, inner) = value
            && !inner.is_empty()
        {
            for (name, value) in inner {
                path.push(name.clone());
                report(figment, path, value, out);
                path.pop();
            }
            return;
        }
        let nearest: Vec<&str> = nearest_key(&path.join(".")).split('.').collect();
        let profile = figment.profile();
        out.push(match figment.get_metadata(value.tag()) {
            Some(metadata) => UnknownKey {
                key: metadata.interpolate(profile, path.as_slice()),
                origin: match &metadata.source {
                    Some(source) => format!("{} {source}", metadata.name),
                    None => metadata.name.to_string(),
                },
                nearest: metadata.interpolate(profile, &nearest),
            },
            None => UnknownKey {
                key: path.join("."),
                origin: "the configuration".into(),
                nearest: nearest.join("."),
            },
        });
    }
    let mut out = Vec::new();
    if let Value::Dict(_, root) = figment.find_value("")? {
        visit(figment, &mut Vec::new(), &root, &mut out);
    }
    Ok(out)
}

impl Settings {
    /// Reads every layer. `.env` is loaded into the process environment first so that the
    /// environment layer sees it, while real environment variables still win over it.
    pub fn load() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_figment(Self::figment())
    }

    pub fn figment() -> Figment {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Ok(path) = std::env::var("TASKAPI_CONFIG") {
            figment = figment.merge(toml_file(path));
        }
        figment
            .merge(prefixed_env())
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database.url".into()),
            )
            .merge(
                Env::raw()
                    .only(&["JWT_SECRET_KEY"])
                    .map(|_| "auth.jwt_secret".into()),
            )
            .merge(Env::raw().only(&["REDIS_URL"]).map(|_| "redis.url".into()))
    }

    /// The settings `figment` holds, once every key in it has been found to name a
    /// setting (a typo would otherwise be ignored, and its default used in silence).
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let unknown = unknown_keys(&figment)?;
        if !unknown.is_empty() {
            return Err(ConfigError::UnknownKeys(unknown));
        }
        let settings: Settings = figment.extract().map_err(Box::new)?;
        settings.check_secret()?;
        Ok(settings)
    }

    fn check_secret(&self) -> Result<(), ConfigError> {
        match self
            .auth
            .jwt_secret
            .as_ref()
            .map(|s| s.expose_secret().len())
        {
            Some(len) if len < MIN_JWT_SECRET_BYTES => Err(ConfigError::SecretTooShort(len)),
            None if self.profile == Profile::Production => {
                Err(ConfigError::SecretMissingInProduction)
            }
            _ => Ok(()),
        }
    }

    /// The database URL to use: the configured one, or the embedded SQLite file.
    pub fn database_url(&self) -> String {
        let url = self.database.url.expose();
        if url.trim().is_empty() {
            "sqlite://data/taskapi.db?mode=rwc".to_string()
        } else {
            url.to_string()
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.server.request_timeout_secs)
    }

    /// A copy safe to print. Secrets and the passwords in URLs already print redacted
    /// (their types see to it); kept so that callers say what they mean.
    pub fn redacted(&self) -> Settings {
        self.clone()
    }
}

/// A connection URL that may carry a password. `Debug` and serialisation show it with the
/// password replaced by `<redacted>`, so no log line, error or config dump can leak it; the
/// whole URL is only reachable through [`SecretUrl::expose`].
#[derive(Clone, Deserialize)]
#[serde(from = "String")]
pub struct SecretUrl(SecretString);

impl Default for SecretUrl {
    fn default() -> Self {
        Self::from(String::new())
    }
}

impl SecretUrl {
    /// The URL itself, password included: for connecting, never for printing.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<String> for SecretUrl {
    fn from(url: String) -> Self {
        Self(SecretString::from(url))
    }
}

impl From<&str> for SecretUrl {
    fn from(url: &str) -> Self {
        Self::from(url.to_string())
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url_password(self.expose()))
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&redact_url_password(self.expose()))
    }
}

/// A URL with every credential replaced by `<redacted>`: the password of its userinfo
/// (`scheme://user:password@host/…`) and any query parameter whose name mentions a password
/// (`?password=…`, `?sslpassword=…`, as libpq and sqlx accept). Anything that is not a URL
/// is returned as it is.
fn redact_url_password(raw: &str) -> String {
    const HIDDEN: &str = "<redacted>";
    let Ok(mut parsed) = url::Url::parse(raw) else {
        return raw.to_string();
    };
    let mut changed = false;
    if parsed.password().is_some() {
        if parsed.set_password(Some(HIDDEN)).is_err() {
            return HIDDEN.into();
        }
        changed = true;
    }
    let secret_query = parsed
        .query_pairs()
        .any(|(name, _)| name.to_ascii_lowercase().contains("password"));
    if secret_query {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let value = if name.to_ascii_lowercase().contains("password") {
                    HIDDEN.to_string()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    if !changed {
        return raw.to_string();
    }
    // The placeholder's brackets come back percent-encoded; show them plainly.
    parsed.to_string().replace("%3Credacted%3E", HIDDEN)
}

fn redacted_secret<S: serde::Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => serializer.serialize_some("<redacted>"),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        for (key, value) in pairs {
            figment = figment.merge((*key, *value));
        }
        Settings::from_figment(figment)
    }

    #[test]
    fn development_without_secret_is_allowed() {
        let settings = with(&[]).expect("defaults load");
        assert!(settings.auth.jwt_secret.is_none());
        assert_eq!(settings.database_url(), "sqlite://data/taskapi.db?mode=rwc");
    }

    #[test]
    fn short_secret_is_refused() {
        let err = with(&[("auth.jwt_secret", "short")]).unwrap_err();
        assert!(matches!(err, ConfigError::SecretTooShort(5)));
    }

    #[test]
    fn production_requires_secret() {
        let err = with(&[("profile", "production")]).unwrap_err();
        assert!(matches!(err, ConfigError::SecretMissingInProduction));
        let secret = "x".repeat(32);
        assert!(with(&[("profile", "production"), ("auth.jwt_secret", &secret)]).is_ok());
    }

    #[test]
    fn cors_origins_are_origins_and_never_a_wildcard() {
        let settings = with(&[(
            "server.cors_allowed_origins",
            "https://app.example.com, http://localhost:5173",
        )])
        .expect("valid");
        assert_eq!(
            settings.server.cors_allowed_origins,
            ["https://app.example.com", "http://localhost:5173"]
        );
        for bad in [
            "*",
            "https://app.example.com/",
            "app.example.com",
            "ftp://x.example",
        ] {
            assert!(
                with(&[("server.cors_allowed_origins", bad)]).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn trusted_proxies_accept_lists_and_comma_separated_text() {
        let settings = with(&[("server.trusted_proxies", "10.0.0.0/8, 127.0.0.2")]).expect("valid");
        let shown: Vec<String> = settings
            .server
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["10.0.0.0/8", "127.0.0.2/32"]);
        assert!(with(&[("server.trusted_proxies", "not-an-ip")]).is_err());
        assert!(
            with(&[])
                .expect("defaults")
                .server
                .trusted_proxies
                .is_empty()
        );
    }

    #[test]
    fn redaction_hides_secret_and_db_password() {
        let secret = "s".repeat(40);
        let settings = with(&[
            ("auth.jwt_secret", secret.as_str()),
            ("database.url", "postgres://app:hunter2@db:5432/tasks"),
            ("redis.url", "redis://default:s3cret@cache:6379"),
        ])
        .expect("valid");
        let shown = serde_json::to_string(&settings.redacted()).expect("serializes");
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("s3cret"));
        assert!(!shown.contains(&secret));
        assert!(
            !format!("{settings:?}").contains(&secret),
            "Debug must not show the secret"
        );
        assert!(shown.contains("postgres://app:<redacted>@db:5432/tasks"));
        let in_query = with(&[
            ("auth.jwt_secret", secret.as_str()),
            (
                "database.url",
                "postgres://app@db:5432/tasks?sslmode=require&password=hunter2&SSLPASSWORD=k3y",
            ),
        ])
        .expect("valid");
        let shown_query = serde_json::to_string(&in_query.redacted()).expect("serializes");
        assert!(!shown_query.contains("hunter2"), "{shown_query}");
        assert!(!shown_query.contains("k3y"), "{shown_query}");
        assert!(shown_query.contains("sslmode=require"), "{shown_query}");
        let debugged = format!("{settings:?}");
        assert!(
            !debugged.contains("hunter2"),
            "Debug must not show the database password"
        );
        assert!(
            !debugged.contains("s3cret"),
            "Debug must not show the Redis password"
        );
    }

    /// Runs `test` in a figment `Jail`: the environment variables it sets and the files it
    /// creates (in a fresh working directory) are undone afterwards, and jails take turns.
    #[expect(
        clippy::result_large_err,
        reason = "the closure figment's Jail takes returns figment's own (large) error"
    )]
    fn in_jail(test: impl FnOnce(&mut figment::Jail)) {
        figment::Jail::expect_with(|jail| {
            test(jail);
            Ok(())
        });
    }

    fn unknown(result: Result<Settings, ConfigError>) -> Vec<UnknownKey> {
        match result {
            Err(ConfigError::UnknownKeys(keys)) => keys,
            other => panic!("expected unknown keys, got {other:?}"),
        }
    }

    #[test]
    fn an_unknown_key_is_refused_with_the_nearest_valid_one() {
        let keys = unknown(with(&[("servre.port", "2"), ("server.host", "0.0.0.0")]));
        assert_eq!(keys.len(), 1, "{keys:?}");
        // Keys given in code show the profile (figment's default); files and variables don't.
        assert_eq!(keys[0].key, "default.servre.port");
        assert_eq!(keys[0].nearest, "default.server.port");
        for (typo, nearest) in [
            ("migrate_on_start", "server.migrate_on_start"),
            ("databse.url", "database.url"),
            ("log.levle", "log.level"),
            ("server.prot", "server.port"),
            ("events.heartbeat", "events.heartbeat_secs"),
        ] {
            assert_eq!(nearest_key(typo), nearest, "for {typo}");
        }
    }

    #[test]
    fn an_unknown_environment_variable_is_named_as_written() {
        in_jail(|jail| {
            jail.set_env("TASKAPI_SERVRE__PORT", 2);
            jail.set_env("TASKAPI_MIGRATE_ON_START", "false");
            jail.set_env("TASKAPI_SERVER__PORT", 9000);
            for name in NOT_SETTINGS
                .iter()
                .filter(|name| **name != "TASKAPI_CONFIG")
            {
                jail.set_env(name, "not a setting");
            }
            let err = Settings::from_figment(Settings::figment()).unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains(
                    "unknown setting `TASKAPI_SERVRE__PORT` in the environment or .env: \
                     did you mean `TASKAPI_SERVER__PORT`?"
                ),
                "{message}"
            );
            assert!(
                message.contains(
                    "`TASKAPI_MIGRATE_ON_START` in the environment or .env: \
                     did you mean `TASKAPI_SERVER__MIGRATE_ON_START`?"
                ),
                "{message}"
            );
            for name in NOT_SETTINGS {
                assert!(!message.contains(name), "{name} refused: {message}");
            }
        });
    }

    #[test]
    fn an_unknown_toml_key_is_named_with_its_file() {
        in_jail(|jail| {
            jail.create_file(
                "taskapi.toml",
                "[servre]\nport = 2\n\n[log]\nlevle = \"debug\"\n\n[sever]\n",
            )
            .expect("config file");
            jail.set_env("TASKAPI_CONFIG", "taskapi.toml");
            let keys = unknown(Settings::from_figment(Settings::figment()));
            let shown: Vec<(&str, &str)> = keys
                .iter()
                .map(|key| (key.key.as_str(), key.nearest.as_str()))
                .collect();
            assert_eq!(
                shown,
                [
                    ("log.levle", "log.level"),
                    ("servre.port", "server.port"),
                    ("sever", "server"),
                ]
            );
            assert!(
                keys.iter().all(|key| key.origin.starts_with("TOML file")
                    && key.origin.ends_with("taskapi.toml")),
                "{keys:?}"
            );
            let message = ConfigError::UnknownKeys(keys).to_string();
            assert!(
                message.contains(
                    "`servre.port` in TOML file taskapi.toml: did you mean `server.port`?"
                ),
                "{message}"
            );
        });
    }

    /// The known keys come from the serialised defaults; serde's own list of each struct's
    /// fields (what `deny_unknown_fields` names when it refuses one) must be the same, unset
    /// `Option`s included, or a valid key would be called unknown.
    #[test]
    fn known_keys_are_every_field_serde_accepts() {
        let known = &*KNOWN_KEYS;
        for key in [
            "server.metrics_port",
            "redis.url",
            "auth.jwt_secret",
            "events.poll_ms",
        ] {
            assert!(known.leaves.contains(key), "{key} missing");
        }
        let children = |section: &str| -> BTreeSet<String> {
            known
                .leaves
                .iter()
                .chain(&known.sections)
                .filter_map(|key| match section {
                    "" => (!key.contains('.')).then(|| key.clone()),
                    _ => key
                        .strip_prefix(section)
                        .and_then(|rest| rest.strip_prefix('.'))
                        .filter(|rest| !rest.contains('.'))
                        .map(str::to_string),
                })
                .collect()
        };
        for section in std::iter::once("").chain(known.sections.iter().map(String::as_str)) {
            let probe = if section.is_empty() {
                "zz_not_a_setting".to_string()
            } else {
                format!("{section}.zz_not_a_setting")
            };
            let figment =
                Figment::from(Serialized::defaults(Settings::default())).merge((probe, 1));
            let err = figment.extract::<Settings>().unwrap_err();
            let figment::error::Kind::UnknownField(_, expected) = err.kind else {
                panic!("{section}: {err}");
            };
            let expected: BTreeSet<String> = expected.iter().map(|f| f.to_string()).collect();
            assert_eq!(children(section), expected, "section {section:?}");
        }
    }

    /// What `.env.example` sets, or offers commented out, and every `TASKAPI_*` variable the
    /// compose files and deploy/ give the service, is a setting or one of `NOT_SETTINGS`.
    #[test]
    fn the_shipped_examples_and_manifests_use_only_valid_keys() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let example = std::fs::read_to_string(root.join(".env.example")).expect(".env.example");
        let mut names = BTreeSet::new();
        for line in example.lines() {
            let line = line.trim_start_matches('#').trim();
            if let Some((name, _)) = line.split_once('=')
                && !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                names.insert(name.to_string());
            }
        }
        assert!(names.contains("JWT_SECRET_KEY") && names.contains("TASKAPI_LOG__LEVEL"));
        fn scan(path: &std::path::Path, names: &mut BTreeSet<String>) {
            if path.is_dir() {
                for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                    scan(&entry.path(), names);
                }
                return;
            }
            let Ok(bytes) = std::fs::read(path) else {
                return;
            };
            let text = String::from_utf8_lossy(&bytes);
            for (at, _) in text.match_indices(ENV_PREFIX) {
                let name: String = text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if name.len() > ENV_PREFIX.len() {
                    names.insert(name);
                }
            }
        }
        for path in [
            "docker-compose.yml",
            "docker-compose.replicas.yml",
            "Dockerfile",
            "deploy",
        ] {
            scan(&root.join(path), &mut names);
        }
        in_jail(|jail| {
            for name in names
                .iter()
                .filter(|name| !NOT_SETTINGS.contains(&name.as_str()))
            {
                jail.set_env(name, "1");
            }
            let figment = Settings::figment();
            let refused: Vec<UnknownKey> = unknown_keys(&figment)
                .expect("the layers load")
                .into_iter()
                .filter(|key| names.contains(&key.key))
                .collect();
            assert!(refused.is_empty(), "{refused:?}");
        });
    }
}
