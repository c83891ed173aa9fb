//! `spawn_app(backend)`: a real taskapi server on port 0 over a brand-new database, on
//! PostgreSQL or SQLite. PostgreSQL comes from TEST_DATABASE_URL (one fresh database per
//! test) or, when that is unset, from a testcontainers PostgreSQL started once per test
//! binary, and only when a PostgreSQL test runs. SQLite is a file in a fresh temp dir.
//!
//! `both_backends!` turns one test body into a test per backend, so the whole HTTP suite
//! runs on both databases.
//!
//! Nothing here reads the developer's environment beyond the TEST_* variables: apps are
//! built from `Settings::default()`, never `Settings::load()` (which reads `.env`).

use std::path::PathBuf;
use std::sync::OnceLock;

use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use taskapi::config::Settings;
use taskapi::models::batch::{Batcher, Job, Stats};
use taskapi::startup::Application;
use taskapi::state::AppState;
use tokio::sync::OnceCell;
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery";
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: AppState,
    /// Admin connection URL of the server and the name of this test's database.
    pub pg_admin_url: Option<String>,
    pub db_name: String,
    _tempdir: Option<TempDir>,
}

/// A directory removed on drop (for SQLite files).
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Log directory shared by every app of this test process (the subscriber is global).
pub fn log_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("test-logs-{}", std::process::id()))
}

fn init_telemetry() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let mut log = Settings::default().log;
        log.dir = log_dir();
        // The file log records everything; stdout stays quiet unless TEST_LOG is set.
        log.stdout = std::env::var("TEST_LOG").is_ok();
        log.level = std::env::var("TEST_LOG").unwrap_or_else(|_| "info".into());
        let (subscriber, guard) =
            taskapi::telemetry::subscriber("taskapi-test", &log, false).expect("telemetry");
        // Keep the file writer alive for the whole process.
        std::mem::forget(guard);
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// The PostgreSQL server admin URL (database `postgres`).
async fn postgres_admin_url() -> String {
    static URL: OnceCell<String> = OnceCell::const_new();
    env_or_container(&URL, "TEST_DATABASE_URL", start_container).await
}

/// The URL in `var`, or else the one `start` returns after starting a testcontainers
/// image; decided once per test binary and shared by every test in it.
async fn env_or_container(
    cell: &'static OnceCell<String>,
    var: &str,
    start: fn() -> String,
) -> String {
    cell.get_or_init(|| async { std::env::var(var).unwrap_or_else(|_| start()) })
        .await
        .clone()
}

fn start_container() -> String {
    use testcontainers_modules::postgres::Postgres;
    use testcontainers_modules::testcontainers::ImageExt;
    // The major version of docker-compose.yml; `DROP DATABASE … WITH (FORCE)` (used on
    // every test's teardown) needs PostgreSQL 13 or newer.
    let port = run_container(
        Postgres::default().with_tag("17-alpine"),
        5432,
        "start PostgreSQL with testcontainers (Docker needed, or set TEST_DATABASE_URL)",
    );
    format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres")
}

/// Starts a testcontainers image and returns the host port mapped to `port`.
///
/// The container must outlive every test runtime, so it runs on a thread of its own. That
/// thread keeps it until the process exits, when `remove_containers_at_exit` asks for it to
/// be removed: statics are never dropped, so without that hook every run would leave its
/// containers behind.
fn run_container<I>(
    image: impl testcontainers_modules::testcontainers::runners::AsyncRunner<I> + Send + 'static,
    port: u16,
    what: &'static str,
) -> u16
where
    I: testcontainers_modules::testcontainers::Image + 'static,
{
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<std::sync::mpsc::Sender<()>>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let container = image.start().await.expect(what);
            let host_port = container.get_host_port_ipv4(port).await.expect("port");
            port_tx.send(host_port).expect("send port");
            if let Ok(done) = stop_rx.await {
                let _ = container.rm().await;
                let _ = done.send(());
            }
        });
    });
    CONTAINER_STOPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(stop_tx);
    static AT_EXIT: OnceLock<()> = OnceLock::new();
    AT_EXIT.get_or_init(|| {
        // SAFETY: registers a plain `extern "C" fn` without captured state; it runs once at exit.
        unsafe {
            libc::atexit(remove_containers_at_exit);
        }
    });
    port_rx.recv().expect("container port")
}

/// Asks a container thread to remove its container and waits for it.
type ContainerStop = tokio::sync::oneshot::Sender<std::sync::mpsc::Sender<()>>;
static CONTAINER_STOPS: std::sync::Mutex<Vec<ContainerStop>> = std::sync::Mutex::new(Vec::new());

/// Runs from `exit()`, when the test harness is done: other threads (the containers'
/// runtimes among them) still run at that point, so it can hand the removal to them.
extern "C" fn remove_containers_at_exit() {
    let stops = std::mem::take(&mut *CONTAINER_STOPS.lock().unwrap_or_else(|e| e.into_inner()));
    for stop in stops {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        if stop.send(done_tx).is_ok() {
            // Bounded, so that a wedged Docker daemon cannot hang the test binary's exit.
            let _ = done_rx.recv_timeout(std::time::Duration::from_secs(30));
        }
    }
}

fn with_database(admin_url: &str, db_name: &str) -> String {
    match admin_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db_name}"),
        None => format!("{admin_url}/{db_name}"),
    }
}

pub fn test_settings(database_url: String) -> Settings {
    let mut settings = Settings::default();
    settings.server.port = 0;
    settings.server.host = "127.0.0.1".into();
    settings.server.static_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static");
    settings.database.url = database_url.into();
    settings.database.max_connections = 5;
    settings.auth.jwt_secret = Some(JWT_SECRET.into());
    settings.limits.auth_per_ip_per_minute = 10_000;
    settings.limits.per_user_per_minute = 100_000;
    settings
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// One `#[tokio::test]` per database backend for each named test body, an ordinary
/// `async fn name(backend: Backend)` next to it:
///
/// ```ignore
/// both_backends!(the_name);
/// async fn the_name(backend: Backend) {
///     let app = spawn_app(backend).await;
/// }
/// ```
///
/// generates `mod the_name { #[tokio::test] async fn postgres() #[tokio::test] async fn
/// sqlite() }` (a module and a function may share a name), so the runs are reported as
/// `the_name::postgres` and `the_name::sqlite`, and `cargo test sqlite` or
/// `cargo test the_name` select by backend or by test. The body stays a plain function,
/// which rustfmt formats and the compiler checks like any other.
macro_rules! both_backends {
    ($($test:ident),+ $(,)?) => {
        $(
            mod $test {
                #[tokio::test]
                async fn postgres() {
                    super::$test($crate::helpers::Backend::Postgres).await
                }

                #[tokio::test]
                async fn sqlite() {
                    super::$test($crate::helpers::Backend::Sqlite).await
                }
            }
        )+
    };
}
pub(crate) use both_backends;

/// A brand-new database for one test: its URL, and for PostgreSQL the server's admin URL
/// (to drop it afterwards); for SQLite the temp dir that holds the file.
async fn fresh_database(backend: Backend) -> (String, Option<String>, String, Option<TempDir>) {
    let db_name = format!("taskapi_test_{}", Uuid::new_v4().simple());
    match backend {
        Backend::Postgres => {
            let admin = postgres_admin_url().await;
            let conn = Database::connect(&admin).await.expect("connect admin");
            conn.execute_unprepared(&format!("CREATE DATABASE \"{db_name}\""))
                .await
                .expect("create database");
            conn.close().await.ok();
            (with_database(&admin, &db_name), Some(admin), db_name, None)
        }
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(&db_name);
            std::fs::create_dir_all(&dir).expect("tempdir");
            let url = format!("sqlite://{}/taskapi.db?mode=rwc", dir.display());
            (url, None, db_name, Some(TempDir(dir)))
        }
    }
}

pub async fn spawn_app_with(backend: Backend, customize: impl FnOnce(&mut Settings)) -> TestApp {
    init_telemetry();
    let (url, pg_admin_url, db_name, tempdir) = fresh_database(backend).await;
    let mut settings = test_settings(url);
    customize(&mut settings);
    let app = Application::build(settings).await.expect("build app");
    let port = app.port();
    let state = app.state().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        state,
        pg_admin_url,
        db_name,
        _tempdir: tempdir,
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 9457 problem with this status and returns it.
    #[track_caller]
    pub fn problem(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(self.body["status"], status);
        assert!(self.body["type"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(self.body["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(self.body["detail"].as_str().is_some());
        &self.body
    }

    /// Field names listed in a 422 problem.
    #[track_caller]
    pub fn invalid_fields(&self) -> Vec<String> {
        let body = self.problem(422);
        body["errors"]
            .as_array()
            .expect("errors array")
            .iter()
            .map(|e| e["field"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

/// `method url` with a bearer token and a JSON body when given.
async fn send(
    client: &reqwest::Client,
    method: Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut builder = client.request(method, url);
    if let Some(token) = token {
        builder = builder.bearer_auth(token);
    }
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    TestApp::read(builder.send().await.expect("request sent")).await
}

pub fn unique_email(prefix: &str) -> String {
    format!("{prefix}-{}@example.com", Uuid::new_v4().simple())
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        send(&self.client, method, self.url(path), token, body).await
    }

    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn register(&self, name: &str, email: &str, password: &str) -> Reply {
        self.post(
            "/api/v1/auth/register",
            None,
            json!({"name": name, "email": email, "password": password}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/api/v1/auth/login",
            None,
            json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh_token}),
        )
        .await
    }

    pub async fn logout(&self, refresh_token: &str) -> Reply {
        self.post(
            "/api/v1/auth/logout",
            None,
            json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.request(Method::PATCH, path, token, Some(body)).await
    }

    /// `POST /auth/logout-all` with `access_token`.
    pub async fn logout_all(&self, access_token: &str) -> Reply {
        self.request(
            Method::POST,
            "/api/v1/auth/logout-all",
            Some(access_token),
            None,
        )
        .await
    }

    /// The PostgreSQL store, whose batchers the batching tests watch.
    pub fn pg_tasks(&self) -> &taskapi::models::tasks::PostgresTasks {
        self.state.tasks.postgres().expect("the PostgreSQL store")
    }

    /// Registers a fresh account and returns (access token, user id, email).
    pub async fn new_user(&self, prefix: &str) -> (String, String, String) {
        let email = unique_email(prefix);
        let registered = self.register(prefix, &email, PASSWORD).await;
        assert_eq!(
            registered.status,
            StatusCode::CREATED,
            "{}",
            registered.text
        );
        let login = self.login(&email, PASSWORD).await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.text);
        let token = login.body["access_token"]
            .as_str()
            .expect("token")
            .to_string();
        let id = registered.body["id"].as_str().expect("id").to_string();
        (token, id, email)
    }

    pub async fn create_task(&self, token: &str, body: Value) -> Value {
        let reply = self.post("/api/v1/tasks", Some(token), body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.body
    }

    /// Holds `user_id`'s change-feed lock, the one each write of a task in a project they
    /// are a member of takes first (PostgreSQL), until the returned transaction ends: those
    /// writes wait in the database meanwhile.
    pub async fn hold_feed_lock(&self, user_id: &str) -> sea_orm::DatabaseTransaction {
        use sea_orm::{DatabaseBackend, Statement, TransactionTrait};

        let user_id: Uuid = user_id.parse().expect("user id");
        let blocker = self.state.db.begin().await.expect("begin");
        blocker
            .execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_advisory_xact_lock(taskapi_feed_key($1))",
                [user_id.into()],
            ))
            .await
            .expect("lock");
        blocker
    }

    /// Locks the `tasks` table (PostgreSQL) until the returned transaction ends: every
    /// statement on it waits in the database meanwhile.
    pub async fn hold_tasks_table(&self) -> sea_orm::DatabaseTransaction {
        use sea_orm::TransactionTrait;

        let blocker = self.state.db.begin().await.expect("begin");
        blocker
            .execute_unprepared("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("lock");
        blocker
    }

    /// Executes SQL on this test's database (to check what is really stored).
    pub async fn count(&self, sql: &str) -> i64 {
        use sea_orm::{FromQueryResult, Statement};
        #[derive(FromQueryResult)]
        struct Count {
            n: i64,
        }
        let backend = self.state.db.get_database_backend();
        Count::find_by_statement(Statement::from_string(backend, sql.to_string()))
            .one(&self.state.db)
            .await
            .expect("count query")
            .expect("one row")
            .n
    }
}

/// A Redis URL for tests: TEST_REDIS_URL, or a testcontainers Redis started once per test
/// binary (and removed at exit, like the PostgreSQL one).
pub async fn redis_url() -> String {
    static URL: OnceCell<String> = OnceCell::const_new();
    env_or_container(&URL, "TEST_REDIS_URL", start_redis_container).await
}

fn start_redis_container() -> String {
    use testcontainers_modules::redis::Redis;
    use testcontainers_modules::testcontainers::ImageExt;
    // The tag docker-compose.yml uses.
    let port = run_container(
        Redis::default().with_tag("7-alpine"),
        6379,
        "start Redis with testcontainers (Docker needed, or set TEST_REDIS_URL)",
    );
    format!("redis://127.0.0.1:{port}")
}

/// Settings that put an app on a Redis of its own: a fresh key prefix per test, so tests
/// sharing one Redis never see each other's counters or revocations.
pub async fn use_redis(settings: &mut Settings, prefix: &str) {
    settings.redis.url = Some(redis_url().await.into());
    settings.redis.key_prefix = format!("test:{prefix}:");
}

impl TestApp {
    /// Another replica: a second server on this app's database (and with these settings
    /// plus `customize`), as a load balancer would see it.
    pub async fn spawn_replica(&self, customize: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = (*self.state.settings).clone();
        settings.server.port = 0;
        customize(&mut settings);
        let app = Application::build(settings).await.expect("build replica");
        let port = app.port();
        let state = app.state().clone();
        tokio::spawn(app.run_until(std::future::pending()));
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            client: self.client.clone(),
            state,
            // The first app owns (and drops) the database.
            pg_admin_url: None,
            db_name: self.db_name.clone(),
            _tempdir: None,
        }
    }
}

impl Drop for TestApp {
    /// Drops this test's PostgreSQL database so repeated runs leave nothing behind.
    fn drop(&mut self) {
        if let Some(admin) = self.pg_admin_url.clone() {
            drop_database(admin, self.db_name.clone());
        }
    }
}

/// `DROP DATABASE … WITH (FORCE)` on the server at `admin`, from a thread of its own (a
/// `Drop` may run inside a runtime, where blocking on another one is not allowed).
fn drop_database(admin: String, db_name: String) {
    let cleanup = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Runtime::new() else {
            return;
        };
        runtime.block_on(async move {
            if let Ok(conn) = Database::connect(&admin).await {
                let _ = conn
                    .execute_unprepared(&format!(
                        "DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)"
                    ))
                    .await;
                conn.close().await.ok();
            }
        });
    });
    let _ = cleanup.join();
}

/// Waits until `batcher` has taken `calls` calls into batches since `before`.
pub async fn until_taken<J: Job>(batcher: &Batcher<J>, before: Stats, calls: u64) {
    eventually(BATCH_WAIT, "calls taken into batches", async || {
        batcher.stats().calls - before.calls >= calls
    })
    .await;
}

/// Bound of the batch waits: a regression that stops a batcher fails the test instead of
/// hanging it.
const BATCH_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Waits until `calls` calls since `before` are either taken into batches or queued.
pub async fn until_taken_or_queued<J: Job>(batcher: &Batcher<J>, before: Stats, calls: usize) {
    eventually(BATCH_WAIT, "calls taken or queued", async || {
        let now = batcher.stats();
        now.calls - before.calls + (now.waiting as u64) >= (calls as u64)
    })
    .await;
}

/// Asserts that exactly `calls` calls were taken since `before`, and shared statements:
/// fewer than one per two calls.
pub fn assert_shared<J: Job>(batcher: &Batcher<J>, before: Stats, calls: usize) {
    let after = batcher.stats();
    assert_eq!(after.calls - before.calls, calls as u64);
    let statements = after.statements - before.statements;
    assert!(
        statements < calls as u64 / 2,
        "{calls} calls took {statements} statements"
    );
}

/// A Redis server of the test's own, which the test may kill and start again on the same
/// port, as an outage would: `redis-server` from PATH (CI installs it), or else a `redis`
/// container through the Docker CLI (what a machine with only Docker has, as for
/// testcontainers). Removed when dropped.
pub struct RedisProcess {
    port: u16,
    running: Option<RunningRedis>,
}

enum RunningRedis {
    Process(std::process::Child),
    /// The container's id; started with `--rm`, so killing it removes it.
    Container(String),
}

impl RedisProcess {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut redis = Self {
            port,
            running: None,
        };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: connections drop at once, nothing is flushed.
    pub fn kill(&mut self) {
        match self.running.take() {
            Some(RunningRedis::Process(mut child)) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Some(RunningRedis::Container(id)) => {
                let _ = std::process::Command::new("docker")
                    .args(["kill", &id])
                    .output();
            }
            None => {}
        }
    }

    fn spawn(&self) -> RunningRedis {
        let port = self.port.to_string();
        let process = std::process::Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn();
        if let Ok(child) = process {
            return RunningRedis::Process(child);
        }
        let published = format!("127.0.0.1:{port}:6379");
        let output = std::process::Command::new("docker")
            .args(["run", "-d", "--rm", "-p", &published, "redis:7-alpine"])
            .args(["redis-server", "--save", "", "--appendonly", "no"])
            .output()
            .expect("redis-server on PATH, or Docker");
        assert!(
            output.status.success(),
            "docker run redis: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        RunningRedis::Container(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// (Re)starts the server on its port and waits until it answers.
    pub async fn restart(&mut self) {
        self.kill();
        self.running = Some(self.spawn());
        // A container may first have to be pulled.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            if redis_answers(self.port).await {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

async fn redis_answers(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut conn) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let mut answer = [0u8; 7];
    conn.write_all(b"PING\r\n").await.is_ok()
        && conn.read_exact(&mut answer).await.is_ok()
        && &answer == b"+PONG\r\n"
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `condition` holds, polling every 20 ms; fails the test with `what` if it
/// does not within `within`.
pub async fn eventually(
    within: std::time::Duration,
    what: &str,
    mut condition: impl AsyncFnMut() -> bool,
) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Sends `request` (raw HTTP/1.1 bytes) on a fresh connection and resets the connection
/// (RST, not FIN) `after` the last byte was written, as a client that crashes or hangs up
/// mid-request does. Returns without reading anything.
pub async fn send_then_reset(address: &str, request: &[u8], after: std::time::Duration) {
    use tokio::io::AsyncWriteExt;
    let host = address.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(host).await.expect("connect");
    conn.set_nodelay(true).expect("nodelay");
    conn.write_all(request).await.expect("request written");
    if !after.is_zero() {
        tokio::time::sleep(after).await;
    }
    // Linger 0: closing sends RST at once and discards anything unsent or unread.
    conn.set_zero_linger().expect("linger");
    drop(conn);
}

/// A raw HTTP/1.1 request with a JSON body (and a bearer token when given).
pub fn raw_request(method: &str, path: &str, token: Option<&str>, body: &str) -> Vec<u8> {
    let auth = token.map_or(String::new(), |token| {
        format!("authorization: Bearer {token}\r\n")
    });
    format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n{auth}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A TCP proxy in front of PostgreSQL: it can add latency to what the server sends back
/// (a database in another zone), or freeze (a host that hangs, a network that drops
/// packets: connections stay open, nothing passes).
pub struct DbProxy {
    pub port: u16,
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Microseconds each chunk from the server waits before it is passed on.
    reply_delay_us: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl DbProxy {
    /// Proxies every connection to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Self {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU64};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let frozen = Arc::new(AtomicBool::new(false));
        let reply_delay_us = Arc::new(AtomicU64::new(0));
        let (flag, delay) = (frozen.clone(), reply_delay_us.clone());
        tokio::spawn(async move {
            let no_delay = Arc::new(AtomicU64::new(0));
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pipe(
                    client_read,
                    server_write,
                    flag.clone(),
                    no_delay.clone(),
                ));
                tokio::spawn(pipe(server_read, client_write, flag.clone(), delay.clone()));
            }
        });
        Self {
            port,
            frozen,
            reply_delay_us,
        }
    }

    pub fn freeze(&self) {
        self.frozen.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn delay_replies(&self, by: std::time::Duration) {
        let micros = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.reply_delay_us
            .store(micros, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
    delay_us: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let Ok(read) = from.read(&mut buffer).await else {
            return;
        };
        if read == 0 {
            return;
        }
        if frozen.load(Ordering::SeqCst) {
            // Swallow everything, keep both sockets open.
            std::future::pending::<()>().await;
        }
        let delay = delay_us.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_micros(delay)).await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

/// `postgres://user@host:port/db` with host:port replaced by `127.0.0.1:port`, and the
/// `host:port` it replaced.
pub fn through(url: &str, port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let (userinfo, rest) = rest.rsplit_once('@').map_or(("", rest), |(u, r)| (u, r));
    let (authority, path) = rest.split_once('/').expect("database path");
    let at = if userinfo.is_empty() { "" } else { "@" };
    (
        format!("{scheme}://{userinfo}{at}127.0.0.1:{port}/{path}"),
        authority.to_string(),
    )
}

/// The sum of the series of metric `name` (exactly that name, not a longer one that starts
/// with it) whose labels include every `labels` pair (exactly that label and value), in a
/// Prometheus text exposition; `None` when no such series is there.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (series_labels, value) = match rest.strip_prefix('{') {
            Some(rest) => match rest.rsplit_once('}') {
                Some(split) => split,
                None => continue,
            },
            None if rest.starts_with(' ') => ("", rest),
            None => continue,
        };
        let has = |(label, wanted): &(&str, &str)| {
            let pair = format!("{label}=\"{wanted}\"");
            series_labels.match_indices(&pair).any(|(at, _)| {
                let after = &series_labels[at + pair.len()..];
                (at == 0 || series_labels[..at].ends_with(','))
                    && (after.is_empty() || after.starts_with(','))
            })
        };
        if labels.iter().all(has)
            && let Some(value) = value
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
        {
            *found.get_or_insert(0.0) += value;
        }
    }
    found
}

#[test]
fn metric_value_sums_exactly_the_named_series_with_exactly_those_labels() {
    let text = "\
# HELP http_requests_total HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method=\"GET\",route=\"/api/v1/tasks\",status=\"200\"} 3
http_requests_total{method=\"GET\",route=\"/api/v1/tasks/{id}\",status=\"200\"} 4
http_requests_total{method=\"POST\",route=\"/api/v1/tasks\",status=\"201\"} 5
http_requests_total_extra{method=\"GET\"} 100
http_requests{method=\"GET\"} 1000
other{submethod=\"GET\",method=\"GETX\"} 7
tasks_created_total 2
tasks_created_total_other 9
";
    let value = |name, labels: &[(&str, &str)]| metric_value(text, name, labels);
    assert_eq!(value("http_requests_total", &[]), Some(12.0));
    assert_eq!(
        value("http_requests_total", &[("method", "GET")]),
        Some(7.0)
    );
    assert_eq!(
        value("http_requests_total", &[("route", "/api/v1/tasks")]),
        Some(8.0)
    );
    assert_eq!(
        value(
            "http_requests_total",
            &[("method", "GET"), ("route", "/api/v1/tasks/{id}")]
        ),
        Some(4.0)
    );
    assert_eq!(value("http_requests_total", &[("method", "PUT")]), None);
    assert_eq!(value("tasks_created_total", &[]), Some(2.0));
    // Neither a longer label name nor a longer value matches.
    assert_eq!(value("other", &[("method", "GET")]), None);
    assert_eq!(value("other", &[("method", "GETX")]), Some(7.0));
    // Neither a longer nor a shorter metric name matches; comments are not series.
    assert_eq!(value("http_requests_tota", &[]), None);
    assert_eq!(value("http_requests", &[]), Some(1000.0));
    assert_eq!(value("missing_total", &[]), None);
    assert_eq!(metric_sum(text, "missing_total", &[]), 0.0);
}

/// [`metric_value`], 0 when the series is not there (yet).
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metric_value(text, name, labels).unwrap_or(0.0)
}

/// Upper bound for anything the tests wait for; reaching it is a failure, not a timing.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

pub fn read_log_lines() -> Vec<serde_json::Value> {
    read_log_lines_in(&log_dir())
}

/// The JSON lines of the `app.log*` files in `dir`.
fn read_log_lines_in(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("app.log"))
        .flat_map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter_map(|line| serde_json::from_str(&line).ok())
        .collect()
}

/// Waits until the log in `dir` holds a `request completed` line for `request_id`.
async fn completed_line_in(dir: &std::path::Path, request_id: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(line) = read_log_lines_in(dir).into_iter().find(|l| {
            l["request_id"] == request_id
                && l["msg"]
                    .as_str()
                    .is_some_and(|m| m.ends_with("request completed"))
        }) {
            return line;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no log line for {request_id}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The server binary with an empty environment, run in `workdir`: neither the developer's
/// shell variables nor a `.env` reach it, only what the test sets explicitly.
pub fn taskapi(workdir: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_taskapi"));
    command.env_clear().current_dir(workdir);
    command
}

/// A fresh, empty working directory for a spawned binary, removed on drop. It is under the
/// system temp dir, not the checkout: dotenvy looks for `.env` in the working directory and
/// its parents, and the compose instructions put one at the root of the checkout.
pub fn scratch_dir(purpose: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!(
        "taskapi-{purpose}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    TempDir(dir)
}

/// Starts `command` (a `taskapi serve`) on a port the server picks itself (0) and returns
/// the child and the port it reported in its "taskapi listening" line. A port probed and
/// released beforehand could be taken by another process before the server binds it.
pub fn spawn_on_own_port(command: std::process::Command) -> (std::process::Child, u16) {
    try_spawn_on_own_port(command)
        .map(|(child, listening)| (child, listening.port))
        .unwrap_or_else(|status| panic!("the server exited before it listened: {status}"))
}

/// The ports a spawned server reported as bound.
#[derive(Debug, Clone, Copy)]
struct Listening {
    port: u16,
    /// The separate metrics listener's, when it has one.
    metrics_port: Option<u16>,
}

/// [`spawn_on_own_port`], or the exit status of a server that stopped before it listened
/// (one that could not bind a port it was given, say).
fn try_spawn_on_own_port(
    mut command: std::process::Command,
) -> Result<(std::process::Child, Listening), std::process::ExitStatus> {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc::RecvTimeoutError;
    command
        .env("TASKAPI_SERVER__PORT", "0")
        .stdout(std::process::Stdio::piped());
    let mut child = command.spawn().expect("spawn server");
    let stdout = child.stdout.take().expect("stdout");
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    // Reads the whole output, so that the server never blocks on a full pipe. It ends, and
    // drops the sender, when the server exits.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(fields) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let port_of = |field: &str| {
                fields[field]
                    .as_u64()
                    .and_then(|port| u16::try_from(port).ok())
            };
            if fields["msg"] == "taskapi listening"
                && let Some(port) = port_of("port")
            {
                let metrics_port = port_of("metrics_port");
                let _ = port_tx.send(Listening { port, metrics_port });
            }
        }
    });
    match port_rx.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(listening) => Ok((child, listening)),
        Err(RecvTimeoutError::Disconnected) => Err(child.wait().expect("wait for the server")),
        Err(RecvTimeoutError::Timeout) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not report its port within 30 s");
        }
    }
}

/// For a test that needs its app in the test process (to reach into its pool, say) and a
/// metrics registry of its own all the same: true in a test process that runs only the
/// test `name` (its path as `cargo test` lists it), where the caller goes on with its
/// body; elsewhere it runs this test binary again for just that test, fails if that run
/// fails, and is false (the caller returns).
pub fn in_a_test_process_of_its_own(name: &str) -> bool {
    const ONLY: &str = "TASKAPI_TEST_ONLY";
    if std::env::var(ONLY).is_ok_and(|only| only == name) {
        return true;
    }
    let output = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([name, "--exact", "--nocapture"])
        .env(ONLY, name)
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{name} in a test process of its own:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    false
}

/// A `taskapi serve` process of the test's own, and so a metrics registry of its own: the
/// Prometheus recorder is global to a process, so every app a test spawns in the test
/// process (`spawn_app`) records into the registry all the others share, and what one
/// test reads on /metrics there includes whatever the tests running beside it did. Here
/// the test's requests are the only traffic, so metrics can be asserted exactly.
///
/// Settings as in [`test_settings`] (through the environment; nothing else reaches the
/// binary, see [`taskapi`]), on a fresh database of its own ([`OwnProcess::fresh`]) or on
/// one the test provides ([`OwnProcess::on_database`]). The process is killed on drop, and
/// then its database, if it owns one, dropped.
pub struct OwnProcess {
    child: std::process::Child,
    /// `http://127.0.0.1:port` of its API.
    pub address: String,
    /// Where it serves /metrics: its API address, or its separate metrics listener.
    pub metrics_address: String,
    pub client: reqwest::Client,
    /// The database it serves and that database's name.
    pub database_url: String,
    pub db_name: String,
    /// The PostgreSQL admin URL when the database is this process's own.
    pg_admin_url: Option<String>,
    /// Its working directory, which holds its log directory.
    dir: TempDir,
    _sqlite_dir: Option<TempDir>,
}

/// What [`OwnProcess::fresh`] and [`OwnProcess::on_database`] start; see [`Self::start`].
pub struct OwnProcessBuilder {
    database: OwnDatabase,
    env: Vec<(String, String)>,
    separate_metrics_port: bool,
}

enum OwnDatabase {
    Fresh(Backend),
    Existing(String),
}

/// A server process of its own on a fresh database of `backend`, metrics on its API port
/// (the default configuration).
pub async fn spawn_metrics_app(backend: Backend) -> OwnProcess {
    OwnProcess::fresh(backend).start().await
}

impl OwnProcess {
    /// A process on a brand-new database of `backend`, dropped with the process.
    pub fn fresh(backend: Backend) -> OwnProcessBuilder {
        OwnProcessBuilder {
            database: OwnDatabase::Fresh(backend),
            env: Vec::new(),
            separate_metrics_port: false,
        }
    }

    /// A process on `database_url` (already migrated, say through a [`DbProxy`]), which
    /// the test owns.
    pub fn on_database(database_url: String) -> OwnProcessBuilder {
        OwnProcessBuilder {
            database: OwnDatabase::Existing(database_url),
            env: Vec::new(),
            separate_metrics_port: false,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        send(&self.client, method, self.url(path), token, body).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.request(Method::POST, path, token, Some(body)).await
    }

    /// This process's /metrics text (the scrape itself is not counted as traffic).
    pub async fn metrics(&self) -> String {
        let reply = send(
            &self.client,
            Method::GET,
            format!("{}/metrics", self.metrics_address),
            None,
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.text
    }

    /// [`metric_value`] of this process's /metrics.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        metric_value(&self.metrics().await, name, labels)
    }

    /// Registers a fresh account and returns (access token, user id, email).
    pub async fn new_user(&self, prefix: &str) -> (String, String, String) {
        let email = unique_email(prefix);
        let registered = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({"name": prefix, "email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            registered.status,
            StatusCode::CREATED,
            "{}",
            registered.text
        );
        let login = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.text);
        let token = login.body["access_token"].as_str().expect("token");
        let id = registered.body["id"].as_str().expect("id");
        (token.to_string(), id.to_string(), email)
    }

    pub async fn create_task(&self, token: &str, body: Value) -> Value {
        let reply = self.post("/api/v1/tasks", Some(token), body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.body
    }

    /// The JSON lines of this process's file log so far.
    pub fn log_lines(&self) -> Vec<Value> {
        read_log_lines_in(&self.log_dir())
    }

    /// Waits until this process's log holds a `request completed` line for `request_id`.
    pub async fn completed_line(&self, request_id: &str) -> Value {
        completed_line_in(&self.log_dir(), request_id).await
    }

    fn log_dir(&self) -> PathBuf {
        self.dir.0.join("logs")
    }
}

impl OwnProcessBuilder {
    /// Sets the environment variable `name` of the process (a `TASKAPI_*` setting).
    pub fn env(mut self, name: &str, value: impl ToString) -> Self {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// Serve /metrics on a listener of its own instead of the API port.
    pub fn separate_metrics_port(mut self) -> Self {
        self.separate_metrics_port = true;
        self
    }

    /// Starts the process and waits until it is ready.
    pub async fn start(self) -> OwnProcess {
        let (database_url, pg_admin_url, db_name, sqlite_dir) = match self.database {
            OwnDatabase::Fresh(backend) => fresh_database(backend).await,
            OwnDatabase::Existing(url) => {
                let path = url.split('?').next().unwrap_or(&url);
                let name = path.rsplit('/').next().unwrap_or_default().to_string();
                (url, None, name, None)
            }
        };
        let dir = scratch_dir("own-process");
        let stderr_path = dir.0.join("stderr.log");
        let static_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static");
        let mut command = taskapi(&dir.0);
        command
            .arg("serve")
            .env("DATABASE_URL", &database_url)
            .env("JWT_SECRET_KEY", JWT_SECRET)
            .env("TASKAPI_LOG__DIR", dir.0.join("logs"))
            .env("TASKAPI_SERVER__STATIC_DIR", &static_dir)
            .env("TASKAPI_DATABASE__MAX_CONNECTIONS", "5")
            .env("TASKAPI_LIMITS__AUTH_PER_IP_PER_MINUTE", "10000")
            .env("TASKAPI_LIMITS__PER_USER_PER_MINUTE", "100000")
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stderr(std::fs::File::create(&stderr_path).expect("stderr file"));
        if self.separate_metrics_port {
            // Bound by the server and reported with the API port, like it.
            command.env("TASKAPI_SERVER__METRICS_PORT", "0");
        }
        let (child, listening) = spawn_off_runtime(command).await.unwrap_or_else(|status| {
            let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            panic!("the server exited before it listened ({status}): {stderr}")
        });
        let port = listening.port;
        let metrics_port = listening.metrics_port.unwrap_or(port);
        let process = OwnProcess {
            child,
            address: format!("http://127.0.0.1:{port}"),
            metrics_address: format!("http://127.0.0.1:{metrics_port}"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            database_url,
            db_name,
            pg_admin_url,
            dir,
            _sqlite_dir: sqlite_dir,
        };
        eventually(PATIENCE, "the server is ready", async || {
            process
                .client
                .get(process.url("/health/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
        })
        .await;
        process
    }
}

/// [`try_spawn_on_own_port`] on a blocking thread: the wait for the port must not stall
/// the test's runtime, which may be serving what the server needs to start (a [`DbProxy`]).
async fn spawn_off_runtime(
    command: std::process::Command,
) -> Result<(std::process::Child, Listening), std::process::ExitStatus> {
    tokio::task::spawn_blocking(move || try_spawn_on_own_port(command))
        .await
        .expect("spawning thread")
}

impl Drop for OwnProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(admin) = self.pg_admin_url.take() {
            drop_database(admin, self.db_name.clone());
        }
    }
}

/// Registers a fresh user on the server at `base` (`http://127.0.0.1:port`) and logs it in:
/// its access token.
pub async fn token_at(base: &str) -> String {
    let client = reqwest::Client::new();
    let email = unique_email("spawned");
    client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"name": "Spawned", "email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("register");
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    login["access_token"].as_str().expect("token").to_string()
}

/// `/api/v1/tasks/{id}`.
pub fn task_path(id: impl std::fmt::Display) -> String {
    format!("/api/v1/tasks/{id}")
}
