//! Keyset cursors on `GET /api/v1/tasks`: the walk matches offset paging for every sort,
//! survives inserts between pages, and refuses altered, foreign or mismatched cursors.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, both_backends, spawn_app};

const SORTS: [&str; 8] = [
    "created_at",
    "-created_at",
    "due_date",
    "-due_date",
    "priority",
    "-priority",
    "title",
    "-title",
];

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|task| task["id"].as_str().expect("id").to_string())
        .collect()
}

async fn page(app: &TestApp, token: &str, query: &str) -> Value {
    let reply = app
        .get(&format!("/api/v1/tasks?{query}"), Some(token))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text);
    reply.body
}

fn encoded(cursor: &str) -> String {
    form_urlencoded::byte_serialize(cursor.as_bytes()).collect()
}

/// Every page of `query` by cursor (starting after `start` if given), in order, and the
/// number of pages.
async fn walk(
    app: &TestApp,
    token: &str,
    query: &str,
    start: Option<&str>,
) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let first = match start {
        Some(cursor) => format!("{query}&cursor={}", encoded(cursor)),
        None => query.to_string(),
    };
    let mut body = page(app, token, &first).await;
    let mut pages = 1;
    loop {
        seen.extend(ids(&body));
        let Some(cursor) = body["next_cursor"].as_str() else {
            break;
        };
        body = page(app, token, &format!("{query}&cursor={}", encoded(cursor))).await;
        assert_eq!(body["total"], Value::Null, "no count after a cursor");
        pages += 1;
        assert!(pages < 100, "the walk ends");
    }
    (seen, pages)
}

/// Twelve tasks with repeated titles and priorities and some missing due dates, so that
/// every sort has ties (broken by id) and `due_date` has NULLs.
async fn seed(app: &TestApp, token: &str) {
    let titles = ["b", "a", "c", "a", "b", "d"];
    let priorities = ["low", "high", "medium", "high"];
    for i in 0..12 {
        let mut body = json!({"title": titles[i % titles.len()], "priority": priorities[i % priorities.len()]});
        if i % 3 != 0 {
            body["due_date"] = json!(format!("2030-0{}-15T12:00:00Z", 1 + i % 4));
        }
        app.create_task(token, body).await;
    }
}

both_backends!(cursor_walk_matches_offset_paging_for_every_sort);
async fn cursor_walk_matches_offset_paging_for_every_sort(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("walker").await;
    seed(&app, &token).await;
    for sort in SORTS {
        let mut by_offset = Vec::new();
        for offset in (0..12).step_by(5) {
            let body = page(
                &app,
                &token,
                &format!("sort={sort}&limit=5&offset={offset}"),
            )
            .await;
            assert_eq!(body["total"], 12);
            by_offset.extend(ids(&body));
        }
        let (by_cursor, pages) = walk(&app, &token, &format!("sort={sort}&limit=5"), None).await;
        assert_eq!(pages, 3, "{sort}");
        assert_eq!(by_cursor, by_offset, "{sort}: same order as offset paging");
        let mut unique = by_cursor.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 12, "{sort}: every task exactly once");
    }
    // A filter stays applied along the walk (and a page that ends exactly at the last
    // matching task has no next cursor).
    let (high, _) = walk(&app, &token, "priority=high&sort=title&limit=2", None).await;
    let expected = ids(&page(&app, &token, "priority=high&sort=title&limit=100").await);
    assert_eq!(high, expected);
    assert_eq!(high.len(), 6);
    let last = page(&app, &token, "limit=100").await;
    assert_eq!(last["next_cursor"], Value::Null);
    assert_eq!(last["total"], 12);
}

both_backends!(cursor_pages_are_stable_under_inserts);
async fn cursor_pages_are_stable_under_inserts(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("stable").await;
    for i in 0..6 {
        app.create_task(&token, json!({"title": format!("old {i}")}))
            .await;
    }
    // Newest first (the default): new tasks land before page 1 and must not shift page 2.
    let first = page(&app, &token, "limit=3").await;
    let cursor = first["next_cursor"]
        .as_str()
        .expect("more pages")
        .to_string();
    let shifted_offset = page(&app, &token, "limit=3&offset=3").await;
    for i in 0..2 {
        app.create_task(&token, json!({"title": format!("new {i}")}))
            .await;
    }
    let second = page(
        &app,
        &token,
        &format!("limit=3&cursor={}", encoded(&cursor)),
    )
    .await;
    assert_eq!(
        ids(&second),
        ids(&shifted_offset),
        "exactly the next three old tasks"
    );
    assert_eq!(second["next_cursor"], Value::Null);
    let moved = page(&app, &token, "limit=3&offset=3").await;
    assert_ne!(
        ids(&moved),
        ids(&second),
        "offset paging would have repeated rows"
    );
    // Oldest first: the walk continues into tasks added while it runs, none twice.
    let first = page(&app, &token, "sort=created_at&limit=4").await;
    let cursor = first["next_cursor"].as_str().expect("more").to_string();
    app.create_task(&token, json!({"title": "newest"})).await;
    let (rest, _) = walk(&app, &token, "sort=created_at&limit=4", Some(&cursor)).await;
    let mut all = ids(&first);
    all.extend(rest);
    let everything = ids(&page(&app, &token, "sort=created_at&limit=100").await);
    assert_eq!(all, everything);
    assert_eq!(all.len(), 9);
}

both_backends!(altered_foreign_and_mismatched_cursors_are_refused);
async fn altered_foreign_and_mismatched_cursors_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, _, _) = app.new_user("alice").await;
    let (bob, _, _) = app.new_user("bob").await;
    for i in 0..3 {
        app.create_task(&alice, json!({"title": format!("t{i}"), "status": "todo"}))
            .await;
        app.create_task(&bob, json!({"title": format!("b{i}")}))
            .await;
    }
    let first = page(&app, &alice, "status=todo&sort=title&limit=1").await;
    let cursor = first["next_cursor"].as_str().expect("cursor").to_string();
    let refused = |query: String, token: String| {
        let app = &app;
        async move {
            let reply = app
                .get(&format!("/api/v1/tasks?{query}"), Some(&token))
                .await;
            assert_eq!(reply.invalid_fields(), ["cursor"], "{query}");
        }
    };
    let c = encoded(&cursor);
    // Altered: one character of the payload changed.
    let mut bytes = cursor.clone().into_bytes();
    bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
    let altered = encoded(&String::from_utf8(bytes).expect("ascii"));
    refused(
        format!("status=todo&sort=title&limit=1&cursor={altered}"),
        alice.clone(),
    )
    .await;
    refused("cursor=not-a-cursor".to_string(), alice.clone()).await;
    // Foreign: Bob replays Alice's cursor with the same filters.
    refused(
        format!("status=todo&sort=title&limit=1&cursor={c}"),
        bob.clone(),
    )
    .await;
    // Mismatched: other filter, no filter, other sort.
    refused(
        format!("status=done&sort=title&limit=1&cursor={c}"),
        alice.clone(),
    )
    .await;
    refused(format!("sort=title&limit=1&cursor={c}"), alice.clone()).await;
    refused(
        format!("status=todo&sort=-title&limit=1&cursor={c}"),
        alice.clone(),
    )
    .await;
    // Cursor and offset together.
    refused(
        format!("status=todo&sort=title&offset=0&cursor={c}"),
        alice.clone(),
    )
    .await;
    // The limit may change between pages.
    let rest = page(
        &app,
        &alice,
        &format!("status=todo&sort=title&limit=5&cursor={c}"),
    )
    .await;
    assert_eq!(rest["items"].as_array().expect("items").len(), 2);
    assert_eq!(rest["items"][0]["title"], "t1");
}

both_backends!(total_stops_counting_at_the_cap);
/// `total` counts up to 100 matches (the count of a large owner cost more than the page):
/// beyond that it is 100 with `total_capped: true`, on the default listing, a filtered
/// one, and a filtered one past its last page; a selective filter still counts exactly.
async fn total_stops_counting_at_the_cap(backend: Backend) {
    use futures::StreamExt;
    use taskapi::entities::task::Status;
    use taskapi::models::tasks::TaskInput;
    use taskapi::requests::CreateTaskRequest;

    let app = spawn_app(backend).await;
    let (token, user_id, _) = app.new_user("capped").await;
    let owner = user_id.parse().expect("user id");
    let store = &app.state.tasks;
    futures::stream::iter(0..103)
        .for_each_concurrent(16, |n| async move {
            let input = TaskInput::try_from(CreateTaskRequest {
                project_id: None,
                title: format!("bulk {n}"),
                description: (n < 3).then(|| "needle".to_string()),
                status: Some(Status::Todo),
                priority: None,
                due_date: None,
                assignee_ids: None,
                label_ids: None,
            })
            .expect("valid task");
            store.create(owner, owner, input).await.expect("task");
        })
        .await;
    for query in [
        "limit=5",
        "limit=5&status=todo",
        "limit=5&sort=-priority",
        "limit=5&status=todo&offset=5000",
    ] {
        let body = page(&app, &token, query).await;
        assert_eq!(body["total"], 100, "{query}");
        assert_eq!(body["total_capped"], true, "{query}");
    }
    let body = page(&app, &token, "limit=5&q=needle").await;
    assert_eq!(body["total"], 3);
    assert_eq!(body["total_capped"], false);
    let body = page(&app, &token, "limit=5&status=done").await;
    assert_eq!(body["total"], 0);
    assert_eq!(body["total_capped"], false);
}

both_backends!(a_filtered_page_past_the_end_agrees_with_its_total);
/// Past the last page of a filtered listing, `total` used to be counted by a second
/// statement after the (empty) page: a task created in between made an empty page claim
/// more matches than its offset skipped. Read while another client keeps creating, an
/// empty page never says more than its offset.
async fn a_filtered_page_past_the_end_agrees_with_its_total(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("racing").await;
    let created = std::sync::atomic::AtomicU64::new(0);
    let writer = async {
        for n in 0..150 {
            app.create_task(&token, json!({"title": format!("todo {n}")}))
                .await;
            created.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    };
    let reader = async {
        let mut empty_pages = 0;
        loop {
            // One read at least after the writer is done: that page (offset 150) is past
            // the end whatever the timing, so the check below always runs. While the
            // writer runs, a create may land between reading `created` and the page.
            let offset = created.load(std::sync::atomic::Ordering::SeqCst);
            let writer_done = offset == 150;
            let body = page(
                &app,
                &token,
                &format!("status=todo&limit=5&offset={offset}"),
            )
            .await;
            if body["items"].as_array().expect("items").is_empty() {
                empty_pages += 1;
                let total = body["total"].as_u64().expect("total");
                assert!(
                    total <= offset,
                    "an empty page at offset {offset} says {total} tasks match"
                );
            }
            if writer_done {
                break;
            }
        }
        empty_pages
    };
    let ((), empty_pages) = tokio::join!(writer, reader);
    assert!(empty_pages > 0, "no page fell past the end");
}
