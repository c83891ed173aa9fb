//! Operability: health, metrics, request ids, logs, graceful shutdown and the CLI.

use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    Backend, OwnProcess, TestApp, both_backends, metric_sum, metric_value, read_log_lines,
    scratch_dir, spawn_app, spawn_app_with, spawn_metrics_app, task_path, taskapi,
};

both_backends!(health_endpoints_report_liveness_and_readiness);
async fn health_endpoints_report_liveness_and_readiness(backend: Backend) {
    let app = spawn_app(backend).await;
    let live = app.get("/health/live", None).await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(live.body["status"], "ok");
    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(
        ready.body,
        json!({"status": "ready", "database": "ok", "migrations": "applied", "redis": "disabled"})
    );
}

both_backends!(readiness_reports_draining);
/// Readiness while shutting down: out of rotation at once (503 `draining`, Retry-After,
/// the connection closed), while liveness stays up so nothing restarts the process.
async fn readiness_reports_draining(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/health/ready", None).await.status, StatusCode::OK);
    app.state.start_draining();
    let ready = app.get("/health/ready", None).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text
    );
    assert_eq!(ready.body["status"], "draining");
    assert!(ready.header("retry-after").is_some());
    assert_eq!(ready.header("connection"), Some("close"));
    let live = app.get("/health/live", None).await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(live.header("connection"), Some("close"));
}

both_backends!(readiness_reports_pending_migrations_until_they_are_applied);
/// Readiness before the migrations ran (Kubernetes runs them in a Job, `migrate_on_start`
/// off): 503 `migrations pending` until they are applied, then ready without a restart.
async fn readiness_reports_pending_migrations_until_they_are_applied(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.server.migrate_on_start = false).await;
    let ready = app.get("/health/ready", None).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text
    );
    assert_eq!(ready.body["status"], "migrations pending");
    assert_eq!(ready.body["database"], "ok");
    assert_eq!(ready.body["migrations"], "pending");
    assert!(ready.header("retry-after").is_some());
    taskapi::db::migrate(&app.state.db).await.expect("migrate");
    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.body["migrations"], "applied");
}

/// PostgreSQL only: it drops the test's database under the running server. (A SQLite file
/// that disappears stays readable through the open handles, so there is no outage to see.)
#[tokio::test]
async fn ready_turns_503_when_the_database_goes_away() {
    let app = spawn_app(Backend::Postgres).await;
    assert_eq!(app.get("/health/ready", None).await.status, StatusCode::OK);
    let admin = sea_orm::Database::connect(app.pg_admin_url.as_deref().expect("postgres"))
        .await
        .expect("admin connection");
    admin
        .execute_unprepared(&format!("DROP DATABASE \"{}\" WITH (FORCE)", app.db_name))
        .await
        .expect("drop database");
    let ready = app.get("/health/ready", None).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text
    );
    assert_eq!(ready.body["status"], "unavailable");
    // Liveness does not depend on the database.
    assert_eq!(app.get("/health/live", None).await.status, StatusCode::OK);
    // API calls fail cleanly with the promised 503 problem (and a time to retry) rather
    // than hanging, crashing or answering a bare 500.
    let login = app.login("someone@example.com", "whatever-password").await;
    login.problem(503);
    assert!(login.header("retry-after").is_some(), "{:?}", login.headers);
}

/// No stored data involved: SQLite, so this never needs PostgreSQL.
#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = spawn_app(Backend::Sqlite).await;
    let echoed = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .expect("send");
    assert_eq!(echoed.headers()["x-request-id"], "trace-abc-123");
    let generated = app
        .client
        .get(app.url("/api/v1/nope"))
        .send()
        .await
        .expect("send");
    let id = generated.headers()["x-request-id"].to_str().expect("ascii");
    assert!(uuid::Uuid::parse_str(id).is_ok());
    let hostile = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "x".repeat(500))
        .send()
        .await
        .expect("send");
    assert_ne!(hostile.headers()["x-request-id"].len(), 500);
}

both_backends!(metrics_count_requests_by_route_template);
/// On a server process of its own: its metrics count this test's requests and nothing else.
async fn metrics_count_requests_by_route_template(backend: Backend) {
    let app = spawn_metrics_app(backend).await;
    let (token, _, _) = app.new_user("metered").await;
    let task = app.create_task(&token, json!({"title": "count me"})).await;
    let path = task_path(task["id"].as_str().expect("id"));
    let before = app.metrics().await;
    let labels = [
        ("method", "GET"),
        ("route", "/api/v1/tasks/{id}"),
        ("status", "200"),
    ];
    assert_eq!(
        metric_value(&before, "http_requests_total", &labels),
        Some(0.0)
    );
    for _ in 0..3 {
        app.get(&path, Some(&token)).await;
    }
    let reply = app.get("/metrics", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    let text = reply.text;
    assert_eq!(metric_sum(&text, "http_requests_total", &labels), 3.0);
    assert!(
        !text.contains(task["id"].as_str().expect("id")),
        "raw ids must not become labels"
    );
    for name in [
        "http_request_duration_seconds_bucket",
        "http_requests_in_flight",
        "auth_login_total",
        "auth_registrations_total",
        "tasks_created_total",
        "db_pool_connections",
        "taskapi_build_info",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    // Everything this process served: a registration, a login, a create, three reads.
    assert_eq!(
        metric_sum(&text, "auth_login_total", &[("outcome", "success")]),
        1.0
    );
    assert_eq!(metric_sum(&text, "auth_registrations_total", &[]), 1.0);
    assert_eq!(metric_sum(&text, "tasks_created_total", &[]), 1.0);
    assert_eq!(metric_sum(&text, "http_requests_total", &[]), 6.0);
}

/// No stored data involved: SQLite, so this never needs PostgreSQL. On a server process of
/// its own: its metrics count this test's requests and nothing else.
#[tokio::test]
async fn metrics_can_move_to_a_separate_port() {
    let app = OwnProcess::fresh(Backend::Sqlite)
        .separate_metrics_port()
        .start()
        .await;
    app.get("/metrics", None).await.problem(404);
    let (token, _, _) = app.new_user("scraped").await;
    app.create_task(&token, json!({"title": "counted"})).await;
    let metrics_address = app.metrics_address.as_str();
    assert_ne!(metrics_address, app.address);
    let reply = TestApp::read(
        app.client
            .get(format!("{metrics_address}/metrics"))
            .send()
            .await
            .expect("scrape"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    // The registry behind it is the application's: this process's traffic is in it.
    let created = [
        ("method", "POST"),
        ("route", "/api/v1/tasks"),
        ("status", "201"),
    ];
    assert_eq!(
        metric_sum(&reply.text, "http_requests_total", &created),
        1.0
    );
    assert!(reply.text.contains("taskapi_build_info"));
    // The metrics port serves metrics only, not the API.
    let api = app
        .client
        .get(format!("{metrics_address}/api/v1/tasks"))
        .send()
        .await
        .expect("send");
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
}

both_backends!(log_file_records_auth_and_task_events_with_the_request_id);
async fn log_file_records_auth_and_task_events_with_the_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = crate::helpers::unique_email("logged");
    app.register("Logged", &email, crate::helpers::PASSWORD)
        .await;
    let login = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-request-id", "login-req-42")
        .json(&json!({"email": email, "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .expect("send");
    let token = TestApp::read(login).await.body["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    let created = app
        .client
        .post(app.url("/api/v1/tasks"))
        .bearer_auth(&token)
        .header("x-request-id", "task-req-43")
        .json(&json!({"title": "audited"}))
        .send()
        .await
        .expect("send");
    let task_id = TestApp::read(created).await.body["id"]
        .as_str()
        .expect("id")
        .to_string();

    // The file writer is asynchronous; give it a moment.
    let mut lines: Vec<Value> = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        lines = read_log_lines();
        let has_task = lines.iter().any(|l| l["task_id"] == task_id.as_str());
        let has_login = lines
            .iter()
            .any(|l| l["request_id"] == "login-req-42" && l["event"] == "login");
        if has_task && has_login {
            break;
        }
    }
    let login_line = lines
        .iter()
        .find(|l| l["request_id"] == "login-req-42" && l["event"] == "login")
        .expect("login line with request id");
    assert_eq!(login_line["outcome"], "success");
    assert!(login_line["client_ip"].as_str().is_some());
    let task_line = lines
        .iter()
        .find(|l| l["task_id"] == task_id.as_str())
        .expect("task line");
    assert_eq!(task_line["request_id"], "task-req-43");
    assert_eq!(task_line["event"], "task_create");
    // Never the email, password or token.
    let all = lines.iter().map(Value::to_string).collect::<String>();
    assert!(!all.contains(&email));
    assert!(!all.contains(crate::helpers::PASSWORD));
    assert!(!all.contains(&token));
}

/// Regression: the binary used to inherit the test's working directory (the checkout) and
/// environment, so after `cp .env.example .env` with real secrets the production-profile
/// test found a secret there and served forever instead of refusing to start.
#[test]
fn spawned_binary_sees_only_what_the_test_sets() {
    let dir = scratch_dir("isolated");
    let output = taskapi(&dir.0).arg("config").output().expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let effective: Value = serde_json::from_slice(&output.stdout).expect("json");
    let defaults =
        serde_json::to_value(taskapi::config::Settings::default().redacted()).expect("json");
    assert_eq!(effective, defaults);
}

/// Found by the operations review (#27, item 5): `TASKAPI_SERVRE__PORT=2` started happily on
/// the default port, and a mistyped TOML key was ignored as well. Every command that loads
/// the settings now refuses an unknown key, naming it as written and the nearest valid one.
#[test]
fn an_unknown_setting_stops_every_command_naming_the_nearest_valid_key() {
    let dir = scratch_dir("unknown-setting");
    let run = |args: &[&str], env: &[(&str, String)]| {
        let mut child = taskapi(&dir.0)
            .args(args)
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/db.sqlite?mode=rwc", dir.0.display()),
            )
            .env("JWT_SECRET_KEY", crate::helpers::JWT_SECRET)
            .env("TASKAPI_LOG__DIR", dir.0.join("logs"))
            // Should the key be ignored, `serve` must not take a port someone else uses.
            .env("TASKAPI_SERVER__PORT", "0")
            .envs(env.iter().map(|(name, value)| (name, value)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run");
        // A server that ignored the key would run until stopped.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while child.try_wait().expect("wait").is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`taskapi {}` started with {env:?}", args.join(" "));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = child.wait_with_output().expect("output");
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    let typo = [("TASKAPI_SERVRE__PORT", "2".to_string())];
    for args in [
        &["serve"][..],
        &["config"],
        &["migrate", "status"],
        &["healthcheck"],
    ] {
        let (status, stderr) = run(args, &typo);
        assert!(!status.success(), "`taskapi {}` succeeded", args.join(" "));
        assert!(
            stderr.contains(
                "unknown setting `TASKAPI_SERVRE__PORT` in the environment or .env: \
                 did you mean `TASKAPI_SERVER__PORT`?"
            ),
            "`taskapi {}`: {stderr}",
            args.join(" ")
        );
    }

    let file = dir.0.join("taskapi.toml");
    std::fs::write(&file, "[log]\nlevle = \"debug\"\n").expect("write config");
    let (status, stderr) = run(
        &["config"],
        &[("TASKAPI_CONFIG", file.display().to_string())],
    );
    assert!(!status.success());
    assert!(
        stderr.contains("unknown setting `log.levle` in TOML file")
            && stderr.contains("taskapi.toml: did you mean `log.level`?"),
        "{stderr}"
    );

    // What is not a setting stays allowed (config::NOT_SETTINGS).
    let (status, stderr) = run(&["config"], &[("TASKAPI_BIN", "/bin/true".to_string())]);
    assert!(status.success(), "{stderr}");
}

/// SIGTERM while a request is in flight: the request completes, then the process exits 0.
#[tokio::test]
async fn sigterm_drains_in_flight_requests() {
    let scratch = scratch_dir("sigterm");
    let dir = scratch.0.clone();
    let mut command = taskapi(&dir);
    command
        .arg("serve")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/db.sqlite?mode=rwc", dir.display()),
        )
        .env("JWT_SECRET_KEY", crate::helpers::JWT_SECRET)
        .env("TASKAPI_LOG__DIR", dir.join("logs"))
        .env("TASKAPI_SERVER__SHUTDOWN_GRACE_SECS", "10")
        .stderr(Stdio::null());
    let (mut child, port) = crate::helpers::spawn_on_own_port(command);

    let healthcheck = || {
        taskapi(&dir)
            .arg("healthcheck")
            .env("TASKAPI_SERVER__PORT", port.to_string())
            .output()
            .expect("run healthcheck")
    };
    assert!(
        healthcheck().status.success(),
        "healthcheck of a ready server"
    );

    let base = format!("http://127.0.0.1:{port}");
    let token = crate::helpers::token_at(&base).await;

    // Start a request whose body arrives slowly, so it is in flight at SIGTERM.
    let body = br#"{"title":"finished after SIGTERM"}"#;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&body[..10]).await.expect("first half");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // New connections are no longer served while draining...
    let late = tokio::spawn(async move {
        let Ok(mut late) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
            return String::new();
        };
        let _ = late
            .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        let mut reply = String::new();
        let _ = late.read_to_string(&mut reply).await;
        reply
    });
    // ...but the request already in flight completes normally.
    stream.write_all(&body[10..]).await.expect("second half");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response");
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");

    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        !healthcheck().status.success(),
        "healthcheck of a stopped server"
    );
    let late_reply = late.await.expect("join");
    assert!(
        !late_reply.starts_with("HTTP/1.1 200"),
        "served after SIGTERM: {late_reply}"
    );
}

#[test]
fn cli_help_lists_every_subcommand() {
    let dir = scratch_dir("help");
    let output = taskapi(&dir.0).arg("--help").output().expect("run");
    let help = String::from_utf8_lossy(&output.stdout);
    for sub in ["serve", "migrate", "create-admin", "openapi", "config"] {
        assert!(help.contains(sub), "{sub} missing from --help");
    }
    let migrate = taskapi(&dir.0)
        .args(["migrate", "--help"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&migrate.stdout).contains("status"));
}

#[test]
fn config_subcommand_redacts_secrets() {
    let dir = scratch_dir("config");
    let output = taskapi(&dir.0)
        .arg("config")
        .env("JWT_SECRET_KEY", crate::helpers::JWT_SECRET)
        .env(
            "DATABASE_URL",
            "postgres://app:hunter2-secret@db:5432/tasks",
        )
        .output()
        .expect("run");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains(crate::helpers::JWT_SECRET));
    assert!(!text.contains("hunter2-secret"));
    let parsed: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        parsed["database"]["url"],
        "postgres://app:<redacted>@db:5432/tasks"
    );

    // Found by the operations review (#27, item 3): a password given as a query parameter
    // (libpq and sqlx accept `?password=`) was printed; so was a Redis URL's.
    let output = taskapi(&dir.0)
        .arg("config")
        .env("JWT_SECRET_KEY", crate::helpers::JWT_SECRET)
        .env(
            "DATABASE_URL",
            "postgres://app@db:5432/tasks?password=query-secret&sslmode=require",
        )
        .env("REDIS_URL", "redis://default:redis-secret@cache:6379")
        .output()
        .expect("run");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains("query-secret"), "{text}");
    assert!(!text.contains("redis-secret"), "{text}");
    assert!(text.contains("sslmode=require"), "{text}");
}

#[test]
fn production_profile_refuses_to_start_without_a_secret() {
    let dir = scratch_dir("production");
    let output = taskapi(&dir.0)
        .arg("serve")
        .env("TASKAPI_PROFILE", "production")
        .env("TASKAPI_SERVER__PORT", "0")
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("JWT"));
    let short = taskapi(&dir.0)
        .arg("serve")
        .env("JWT_SECRET_KEY", "too-short")
        .env("TASKAPI_SERVER__PORT", "0")
        .output()
        .expect("run");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("32"));
}

both_backends!(create_admin_and_migrate_subcommands_work);
async fn create_admin_and_migrate_subcommands_work(backend: Backend) {
    let app = spawn_app(backend).await;
    let db_url = app.state.settings.database_url();
    let dir = scratch_dir("create-admin");
    let status = taskapi(&dir.0)
        .args(["migrate", "status"])
        .env("DATABASE_URL", &db_url)
        .output()
        .expect("run");
    assert!(status.status.success());
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("m20261125_000001_create_users_and_tasks")
    );

    let mut child = taskapi(&dir.0)
        .args([
            "create-admin",
            "--email",
            "Boss@Example.com",
            "--name",
            "Boss",
        ])
        .env("DATABASE_URL", &db_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"a strong bootstrap password\n")
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let login = app
        .login("boss@example.com", "a strong bootstrap password")
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    assert_eq!(login.body["user"]["role"], "admin");
    // The first self-registration afterwards is an ordinary user.
    let next = app
        .register(
            "Later",
            &crate::helpers::unique_email("later"),
            crate::helpers::PASSWORD,
        )
        .await;
    assert_eq!(next.body["role"], "user");
}

both_backends!(migrate_subcommands_say_what_they_do_and_gate_pipelines);
/// Found by the operations review (#27, item 4): `migrate up` printed nothing (a Job's log
/// was empty), `migrate status` exited 0 with migrations pending, and `migrate down` ran
/// without asking. Now: `up` lists what it applied, `status` exits 1 while any is pending,
/// `down` needs `--yes` when nobody is at a terminal.
async fn migrate_subcommands_say_what_they_do_and_gate_pipelines(backend: Backend) {
    let app = spawn_app(backend).await;
    let db_url = app.state.settings.database_url();
    let dir = scratch_dir("migrate");
    let run = |args: &[&str]| {
        taskapi(&dir.0)
            .args(args)
            .env("DATABASE_URL", &db_url)
            .stdin(Stdio::null())
            .output()
            .expect("run")
    };
    let text = |output: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    let refused = run(&["migrate", "down"]);
    assert!(
        !refused.status.success(),
        "down without --yes from a script"
    );
    assert!(text(&refused).contains("--yes"), "{}", text(&refused));

    let down = run(&["migrate", "down", "--yes"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(text(&down).contains("rolled back m2"), "{}", text(&down));
    let status = run(&["migrate", "status"]);
    assert!(
        !status.status.success(),
        "status with a pending migration must fail"
    );
    assert!(
        text(&status).contains("1 migration(s) pending"),
        "{}",
        text(&status)
    );

    let up = run(&["migrate", "up"]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(
        text(&up).contains("applied 1 migration(s)"),
        "{}",
        text(&up)
    );
    let status = run(&["migrate", "status"]);
    assert!(status.status.success(), "{}", text(&status));
    let again = run(&["migrate", "up"]);
    assert!(
        text(&again).contains("nothing to apply"),
        "{}",
        text(&again)
    );
}
