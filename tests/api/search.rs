//! Search (`q` on `GET /api/v1/tasks`): the same rows on PostgreSQL and SQLite beyond ASCII
//! (Rust's Unicode lower case, stored folded copies, backfilled by a migration), and the
//! indexes that keep it fast stay out of the way of correctness.

use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::helpers::{Backend, TestApp, both_backends, spawn_app, task_path};

/// Titles of the caller's tasks matching `q`, sorted.
async fn search(app: &TestApp, token: &str, q: &str) -> Vec<String> {
    let url = reqwest::Url::parse_with_params(&app.url("/api/v1/tasks"), [("q", q)]).expect("url");
    let reply = TestApp::read(
        app.client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let mut titles: Vec<String> = reply.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|task| task["title"].as_str().expect("title").to_string())
        .collect();
    titles.sort();
    assert_eq!(reply.body["total"], titles.len(), "total agrees with items");
    titles
}

both_backends!(
    search_is_case_insensitive_beyond_ascii,
    search_follows_title_and_description_changes,
    migration_folds_rows_written_before_it,
);

async fn search_is_case_insensitive_beyond_ascii(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("fold").await;
    for (title, description) in [
        ("Äpfel kaufen", None),
        ("Birnen kaufen", Some("Nicht die ÄPFEL vergessen")),
        ("STRAẞE fegen", None),
        ("ΟΔΟΣ καθαρίζω", None),
        ("DİYARBAKIR gezisi", None),
        ("apples", Some("100%_pure")),
    ] {
        app.create_task(&token, json!({"title": title, "description": description}))
            .await;
    }
    let apples = ["Birnen kaufen", "Äpfel kaufen"];
    for q in ["äpfel", "ÄPFEL", "Äpfel", "äPfEl"] {
        assert_eq!(search(&app, &token, q).await, apples, "q={q}");
    }
    // ẞ folds to ß (no full case folding: `ss` is a different string).
    assert_eq!(search(&app, &token, "straße").await, ["STRAẞE fegen"]);
    assert_eq!(search(&app, &token, "STRASSE").await, Vec::<String>::new());
    // Final sigma: ς and σ are one letter, whatever the position.
    assert_eq!(search(&app, &token, "οδος").await, ["ΟΔΟΣ καθαρίζω"]);
    assert_eq!(search(&app, &token, "ΟΔΟΣ").await, ["ΟΔΟΣ καθαρίζω"]);
    assert_eq!(search(&app, &token, "ΚΑΘΑΡΊΖΩ").await, ["ΟΔΟΣ καθαρίζω"]);
    // No Turkish locale rules: İ folds to "i̇" (i + combining dot), I to i, ı stays ı.
    assert_eq!(
        search(&app, &token, "di̇yarbakir").await,
        ["DİYARBAKIR gezisi"]
    );
    assert_eq!(
        search(&app, &token, "diyarbakır").await,
        Vec::<String>::new()
    );
    // Wildcards stay literal.
    assert_eq!(search(&app, &token, "0%_P").await, ["apples"]);
    assert_eq!(search(&app, &token, "a_p").await, Vec::<String>::new());
}

async fn search_follows_title_and_description_changes(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("refold").await;
    let task = app
        .create_task(&token, json!({"title": "Äpfel", "description": "Öl"}))
        .await;
    let path = task_path(task["id"].as_str().expect("id"));
    let patched = app
        .patch(
            &path,
            Some(&token),
            json!({"title": "Übung", "description": null}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(search(&app, &token, "äpfel").await, Vec::<String>::new());
    assert_eq!(search(&app, &token, "öl").await, Vec::<String>::new());
    assert_eq!(search(&app, &token, "ÜBUNG").await, ["Übung"]);
    let replaced = app
        .request(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({"title": "Plan", "description": "ZÜRICH"})),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text);
    assert_eq!(search(&app, &token, "übung").await, Vec::<String>::new());
    assert_eq!(search(&app, &token, "zürich").await, ["Plan"]);
}

/// Rows an older binary wrote have no folded copies: the search still finds them by the
/// database's `lower()` (ASCII on SQLite), and re-running the migration folds them.
async fn migration_folds_rows_written_before_it(backend: Backend) {
    use migration::MigratorTrait;
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("backfill").await;
    for title in ["Äpfel kaufen", "Apples"] {
        app.create_task(&token, json!({"title": title, "description": "Grüße"}))
            .await;
    }
    let db = &app.state.db;
    db.execute_unprepared("UPDATE tasks SET title_search = NULL, description_search = NULL")
        .await
        .expect("forget folded copies");
    assert_eq!(search(&app, &token, "APPLES").await, ["Apples"]);

    // Back to just before the backfill migration (the later ones go down with it), then up:
    // one migration at a time, until the backfill is no longer applied. The app's own
    // background writers share this SQLite file; a migration transaction that upgrades from
    // read to write while one commits gets "database is locked" at once (SQLite does not
    // wait then; seen once under a loaded run), so a failed step is tried again.
    let backfill_applied = || async {
        migration::Migrator::get_applied_migrations(db)
            .await
            .expect("applied migrations")
            .iter()
            .any(|m| m.name().ends_with("_000004_task_search_text"))
    };
    let mut failures = 0;
    while backfill_applied().await {
        if let Err(err) = migration::Migrator::down(db, Some(1)).await {
            failures += 1;
            assert!(
                failures < 5 && err.to_string().contains("locked"),
                "migration down: {err}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    migration::Migrator::up(db, None)
        .await
        .expect("migration up");
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM tasks WHERE title_search IS NULL")
            .await,
        0
    );
    assert_eq!(search(&app, &token, "ÄPFEL").await, ["Äpfel kaufen"]);
    assert_eq!(search(&app, &token, "GRÜSSE").await, Vec::<String>::new());
    assert_eq!(
        search(&app, &token, "GRÜẞE").await,
        ["Apples", "Äpfel kaufen"]
    );
}

both_backends!(search_ignores_case_beyond_ascii);
/// Search ignores case for every letter, not only ASCII, on both databases. (SQLite's
/// `lower()` folds only ASCII: this failed there until search moved to Rust-lowercased
/// columns.)
async fn search_ignores_case_beyond_ascii(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("umlaut").await;
    app.create_task(&token, json!({"title": "Über den Fluss"}))
        .await;
    app.create_task(&token, json!({"title": "ärger im Büro"}))
        .await;
    for (query, expected) in [
        ("über", "Über den Fluss"),
        ("ÜBER", "Über den Fluss"),
        ("ÄRGER", "ärger im Büro"),
        ("büro", "ärger im Büro"),
    ] {
        assert_eq!(search(&app, &token, query).await, [expected], "{query}");
    }
}

both_backends!(a_search_of_several_words_finds_every_substring_match);
/// A term of several words is a substring like any other: its first word may end a longer
/// word, its last may start one, punctuation and letters beyond ASCII sit between words,
/// and rows an older binary wrote (no folded copies) are found too. On PostgreSQL such a
/// term is first narrowed by a word index (`migration::SEARCH_WORDS_SQL`), which must
/// never drop one of these.
async fn a_search_of_several_words_finds_every_substring_match(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("words").await;
    for (title, description) in [
        ("xtask 123456y", None),
        ("task-12345", None),
        ("Straße 12 B", None),
        ("groceries", Some("<b>buy MILK now</b>, 50% off today")),
        ("Old row here", None),
    ] {
        app.create_task(&token, json!({"title": title, "description": description}))
            .await;
    }
    // A word longer than a `tsvector` takes (2 KiB): the index cuts it into pieces.
    let long_word = format!("zz {} end", "y".repeat(3_000));
    app.create_task(&token, json!({"title": "long", "description": long_word}))
        .await;
    // As an older binary left it: no folded copies, found through `lower()`.
    app.state
        .db
        .execute_unprepared(
            "UPDATE tasks SET title_search = NULL, description_search = NULL \
             WHERE title = 'Old row here'",
        )
        .await
        .expect("forget folded copies");
    for (q, expected) in [
        ("task 12345", vec!["xtask 123456y"]),
        ("ASK 1234", vec!["xtask 123456y"]),
        ("task-12345", vec!["task-12345"]),
        ("ße 12 b", vec!["Straße 12 B"]),
        ("milk now", vec!["groceries"]),
        ("milk now</b>", vec!["groceries"]),
        ("50% off", vec!["groceries"]),
        ("x milk", Vec::new()),
        ("d row he", vec!["Old row here"]),
        ("row here", vec!["Old row here"]),
        ("zz yyyy", vec!["long"]),
        ("yy end", vec!["long"]),
    ] {
        assert_eq!(search(&app, &token, q).await, expected, "q={q}");
    }
}
