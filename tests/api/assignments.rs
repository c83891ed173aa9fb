//! Teams (issue #24), second part: assignees and labels on tasks, their filters, moving a
//! task between projects, comment counts, and the comment, label and membership events of
//! the change feed.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::events::Stream;
use crate::helpers::{Backend, TestApp, both_backends, spawn_app};
use crate::projects::{Person, person, project_named};

async fn label(app: &TestApp, admin: &Person, project: &str, name: &str) -> String {
    let created = app
        .post(
            &format!("/api/v1/projects/{project}/labels"),
            Some(&admin.token),
            json!({"name": name}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    created.body["id"].as_str().expect("id").to_string()
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("id").to_string()
}

fn ids(value: &Value) -> HashSet<String> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|id| id.as_str().expect("id").to_string())
        .collect()
}

fn set(items: &[&str]) -> HashSet<String> {
    items.iter().map(|item| item.to_string()).collect()
}

/// The titles of a listing, in order.
async fn titles(app: &TestApp, token: &str, path: &str) -> Vec<String> {
    let page = app.get(path, Some(token)).await;
    assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text);
    page.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|task| task["title"].as_str().expect("title").to_string())
        .collect()
}

both_backends!(tasks_take_members_as_assignees_and_the_projects_labels_only);
async fn tasks_take_members_as_assignees_and_the_projects_labels_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = person(&app, "admin").await;
    let editor = person(&app, "editor").await;
    let viewer = person(&app, "viewer").await;
    let outsider = person(&app, "outsider").await;
    let project = project_named(
        &app,
        &admin,
        "Launch",
        &[(&editor, "editor"), (&viewer, "viewer")],
    )
    .await;
    let other = project_named(&app, &outsider, "Elsewhere", &[]).await;
    let bug = label(&app, &admin, &project, "Bug").await;
    let foreign = label(&app, &outsider, &other, "Bug").await;

    // A new task shows empty lists and no comments.
    let plain = app
        .create_task(
            &editor.token,
            json!({"title": "plain", "project_id": project}),
        )
        .await;
    assert_eq!(plain["assignee_ids"], json!([]));
    assert_eq!(plain["label_ids"], json!([]));
    assert_eq!(plain["comment_count"], 0);

    let task = app
        .create_task(
            &editor.token,
            json!({"title": "fix it", "project_id": project,
                   "assignee_ids": [editor.id, viewer.id, editor.id], "label_ids": [bug]}),
        )
        .await;
    assert_eq!(ids(&task["assignee_ids"]), set(&[&editor.id, &viewer.id]));
    assert_eq!(task["label_ids"], json!([bug]));
    let path = format!("/api/v1/tasks/{}", id_of(&task));
    let read = app.get(&path, Some(&viewer.token)).await;
    assert_eq!(
        ids(&read.body["assignee_ids"]),
        set(&[&editor.id, &viewer.id])
    );

    // Strangers and other projects' labels are refused, naming the field; nothing changes.
    for (body, field) in [
        (json!({"assignee_ids": [outsider.id]}), "assignee_ids"),
        (json!({"label_ids": [foreign]}), "label_ids"),
        (
            json!({"assignee_ids": [uuid::Uuid::now_v7()]}),
            "assignee_ids",
        ),
    ] {
        let refused = app.patch(&path, Some(&editor.token), body.clone()).await;
        let problem = refused.problem(422);
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
        let mut create = body.clone();
        create["title"] = json!("refused");
        create["project_id"] = json!(project);
        let refused = app.post("/api/v1/tasks", Some(&editor.token), create).await;
        refused.problem(422);
    }
    let too_many: Vec<String> = (0..26).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let refused = app
        .patch(&path, Some(&editor.token), json!({"label_ids": too_many}))
        .await;
    refused.problem(422);
    let unchanged = app.get(&path, Some(&admin.token)).await;
    assert_eq!(unchanged.body["version"], task["version"]);
    assert_eq!(
        titles(
            &app,
            &admin.token,
            &format!("/api/v1/projects/{project}/tasks")
        )
        .await
        .len(),
        2,
        "no refused create was stored"
    );

    // Who may not edit the task learns nothing from the ids: a viewer is refused (403), a
    // stranger finds no task (404), whatever the body names.
    let by_viewer = app
        .patch(
            &path,
            Some(&viewer.token),
            json!({"assignee_ids": [outsider.id]}),
        )
        .await;
    by_viewer.problem(403);
    let by_stranger = app
        .patch(
            &path,
            Some(&outsider.token),
            json!({"label_ids": [foreign]}),
        )
        .await;
    by_stranger.problem(404);

    // PATCH replaces a list; `null` and `[]` clear it; PUT without the lists keeps them.
    let patched = app
        .patch(
            &path,
            Some(&editor.token),
            json!({"assignee_ids": [admin.id]}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.body["assignee_ids"], json!([admin.id]));
    assert_eq!(patched.body["label_ids"], json!([bug]));
    let put = app
        .request(
            Method::PUT,
            &path,
            Some(&editor.token),
            Some(json!({"title": "fix it now"})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(put.body["assignee_ids"], json!([admin.id]));
    assert_eq!(put.body["label_ids"], json!([bug]));
    let cleared = app
        .patch(
            &path,
            Some(&editor.token),
            json!({"assignee_ids": null, "label_ids": []}),
        )
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text);
    assert_eq!(cleared.body["assignee_ids"], json!([]));
    assert_eq!(cleared.body["label_ids"], json!([]));
    assert_eq!(
        cleared.body["version"].as_i64(),
        put.body["version"].as_i64().map(|version| version + 1)
    );

    // An Inbox has one member, its owner, and no labels until it makes some.
    let mine = app
        .create_task(
            &editor.token,
            json!({"title": "mine", "assignee_ids": [editor.id]}),
        )
        .await;
    assert_eq!(mine["assignee_ids"], json!([editor.id]));
    let refused = app
        .post(
            "/api/v1/tasks",
            Some(&editor.token),
            json!({"title": "mine", "assignee_ids": [admin.id]}),
        )
        .await;
    refused.problem(422);
}

both_backends!(listings_filter_by_assignee_and_labels_and_bind_cursors_to_them);
async fn listings_filter_by_assignee_and_labels_and_bind_cursors_to_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = person(&app, "admin").await;
    let editor = person(&app, "editor").await;
    let project = project_named(&app, &admin, "Launch", &[(&editor, "editor")]).await;
    let bug = label(&app, &admin, &project, "Bug").await;
    let urgent = label(&app, &admin, &project, "Urgent").await;
    for (title, assignees, labels) in [
        ("nobody's", json!([]), json!([])),
        ("admin's bug", json!([admin.id]), json!([bug])),
        (
            "editor's urgent bug",
            json!([editor.id]),
            json!([bug, urgent]),
        ),
        (
            "both, urgent",
            json!([admin.id, editor.id]),
            json!([urgent]),
        ),
    ] {
        app.create_task(
            &admin.token,
            json!({"title": title, "project_id": project,
                   "assignee_ids": assignees, "label_ids": labels}),
        )
        .await;
    }
    let list = |query: String| format!("/api/v1/projects/{project}/tasks?sort=title&{query}");
    let cases = [
        (
            "assignee=me".to_string(),
            &editor,
            vec!["both, urgent", "editor's urgent bug"],
        ),
        (
            "assignee=me".to_string(),
            &admin,
            vec!["admin's bug", "both, urgent"],
        ),
        (
            format!("assignee={}", editor.id),
            &admin,
            vec!["both, urgent", "editor's urgent bug"],
        ),
        ("assignee=none".to_string(), &admin, vec!["nobody's"]),
        (
            format!("label={bug}"),
            &admin,
            vec!["admin's bug", "editor's urgent bug"],
        ),
        (
            format!("label={bug}&label={urgent}"),
            &admin,
            vec!["editor's urgent bug"],
        ),
        (
            format!("label={urgent}&assignee={}", admin.id),
            &editor,
            vec!["both, urgent"],
        ),
    ];
    for (query, reader, expected) in cases {
        assert_eq!(
            titles(&app, &reader.token, &list(query.clone())).await,
            expected,
            "{query}"
        );
    }
    // The filters are counted in `total` and hold across keyset pages.
    let first = app
        .get(&list(format!("label={bug}&limit=1")), Some(&admin.token))
        .await;
    assert_eq!(first.body["total"], 2);
    let cursor = first.body["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_string();
    let second = app
        .get(
            &list(format!("label={bug}&limit=1&cursor={cursor}")),
            Some(&admin.token),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    assert_eq!(second.body["items"][0]["title"], "editor's urgent bug");
    // A cursor is bound to its filters: not valid with another label or assignee.
    for other in [format!("label={urgent}"), "assignee=none".to_string()] {
        let replayed = app
            .get(
                &list(format!("{other}&limit=1&cursor={cursor}")),
                Some(&admin.token),
            )
            .await;
        replayed.problem(422);
    }
    // Malformed filters are 422s naming the parameter.
    for (query, field) in [
        ("assignee=someone", "assignee"),
        ("label=not-an-id", "label"),
    ] {
        let refused = app.get(&list(query.to_string()), Some(&admin.token)).await;
        let problem = refused.problem(422);
        assert_eq!(problem["errors"][0]["field"], field, "{query}");
    }
    let eleven: Vec<String> = (0..11)
        .map(|_| format!("label={}", uuid::Uuid::now_v7()))
        .collect();
    let refused = app.get(&list(eleven.join("&")), Some(&admin.token)).await;
    refused.problem(422);
    // A parameter that may not repeat still may not.
    let refused = app
        .get(
            &list("status=todo&status=done".to_string()),
            Some(&admin.token),
        )
        .await;
    refused.problem(422);
}

both_backends!(a_member_who_leaves_and_a_deleted_label_are_taken_off_every_task);
async fn a_member_who_leaves_and_a_deleted_label_are_taken_off_every_task(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = person(&app, "admin").await;
    let editor = person(&app, "editor").await;
    let gone = person(&app, "gone").await;
    let project = project_named(
        &app,
        &admin,
        "Launch",
        &[(&editor, "editor"), (&gone, "editor")],
    )
    .await;
    let bug = label(&app, &admin, &project, "Bug").await;
    let keep = label(&app, &admin, &project, "Keep").await;
    let task = app
        .create_task(
            &admin.token,
            json!({"title": "shared", "project_id": project,
                   "assignee_ids": [editor.id, gone.id], "label_ids": [bug, keep]}),
        )
        .await;
    let path = format!("/api/v1/tasks/{}", id_of(&task));
    let mut stream = Stream::open(&app, &admin.token, None).await;

    let removed = app
        .request(
            Method::DELETE,
            &format!("/api/v1/projects/{project}/members/{}", editor.id),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
    let after = app.get(&path, Some(&admin.token)).await;
    assert_eq!(after.body["assignee_ids"], json!([gone.id]));
    assert_eq!(
        after.body["version"], 2,
        "taking an assignee off is a change"
    );
    let changed = stream.next_event().await;
    assert_eq!(changed.name(), "task.updated");
    assert_eq!(changed.json()["task"]["assignee_ids"], json!([gone.id]));
    assert_eq!(stream.next_event().await.name(), "member.removed");

    let deleted = app
        .request(
            Method::DELETE,
            &format!("/api/v1/projects/{project}/labels/{bug}"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    let after = app.get(&path, Some(&admin.token)).await;
    assert_eq!(after.body["label_ids"], json!([keep]));
    assert_eq!(
        stream.next_event().await.json()["task"]["label_ids"],
        json!([keep])
    );
    let label_gone = stream.next_event().await;
    assert_eq!(label_gone.name(), "label.deleted");
    assert_eq!(label_gone.json()["label_id"], bug.as_str());
    let filtered = titles(
        &app,
        &admin.token,
        &format!("/api/v1/projects/{project}/tasks?label={bug}"),
    )
    .await;
    assert!(filtered.is_empty());

    // A deleted account is taken off too.
    // `admin` registered first: the site's admin too.
    let removed = app
        .request(
            Method::DELETE,
            &format!("/api/v1/admin/users/{}", gone.id),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
    let after = app.get(&path, Some(&admin.token)).await;
    assert_eq!(after.body["assignee_ids"], json!([]));
    let nobody = titles(
        &app,
        &admin.token,
        &format!("/api/v1/projects/{project}/tasks?assignee=none"),
    )
    .await;
    assert_eq!(nobody, ["shared"]);
}

both_backends!(a_task_moves_between_projects_where_its_mover_edits_both);
async fn a_task_moves_between_projects_where_its_mover_edits_both(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = person(&app, "admin").await;
    let both = person(&app, "both").await;
    let source_only = person(&app, "source").await;
    let target_viewer = person(&app, "viewer").await;
    let source = project_named(
        &app,
        &admin,
        "Source",
        &[(&both, "editor"), (&source_only, "editor")],
    )
    .await;
    let target = project_named(
        &app,
        &admin,
        "Target",
        &[(&both, "editor"), (&target_viewer, "viewer")],
    )
    .await;
    let stranger_project = project_named(&app, &source_only, "Theirs", &[]).await;
    let bug = label(&app, &admin, &source, "Bug").await;
    let only_here = label(&app, &admin, &source, "Only here").await;
    let target_bug = label(&app, &admin, &target, "BUG").await;
    let task = app
        .create_task(
            &both.token,
            json!({"title": "moving", "project_id": source,
                   "assignee_ids": [both.id, source_only.id], "label_ids": [bug, only_here]}),
        )
        .await;
    let path = format!("/api/v1/tasks/{}", id_of(&task));
    let mut heard_by_source_only = Stream::open(&app, &source_only.token, None).await;
    let mut heard_by_viewer = Stream::open(&app, &target_viewer.token, None).await;
    let mut heard_by_both = Stream::open(&app, &both.token, None).await;

    // Where the mover may not edit, the task does not move: a project they are not in is a
    // 404, one where they only view a 403, and a task they only view a 403.
    let refused = app
        .patch(
            &path,
            Some(&both.token),
            json!({"project_id": stranger_project}),
        )
        .await;
    refused.problem(404);
    let refused = app
        .patch(
            &path,
            Some(&source_only.token),
            json!({"project_id": target}),
        )
        .await;
    refused.problem(404);
    let refused = app
        .patch(&path, Some(&both.token), json!({"project_id": null}))
        .await;
    refused.problem(422);
    let demoted = app
        .patch(
            &format!("/api/v1/projects/{target}/members/{}", both.id),
            Some(&admin.token),
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text);
    let refused = app
        .patch(&path, Some(&both.token), json!({"project_id": target}))
        .await;
    refused.problem(403);
    let promoted = app
        .patch(
            &format!("/api/v1/projects/{target}/members/{}", both.id),
            Some(&admin.token),
            json!({"role": "editor"}),
        )
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.text);
    assert_eq!(
        app.get(&path, Some(&admin.token)).await.body["project_id"],
        source.as_str()
    );

    // The move: labels follow by name (case ignored), others drop; assignees who are not
    // members there drop; the answer says what was dropped.
    let moved = app
        .patch(
            &path,
            Some(&both.token),
            json!({"project_id": target, "title": "moved"}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    assert_eq!(moved.body["project_id"], target.as_str());
    assert_eq!(moved.body["title"], "moved");
    assert_eq!(moved.body["label_ids"], json!([target_bug]));
    assert_eq!(moved.body["assignee_ids"], json!([both.id]));
    assert_eq!(moved.body["moved"]["from_project_id"], source.as_str());
    assert_eq!(moved.body["moved"]["dropped_label_ids"], json!([only_here]));
    assert_eq!(
        moved.body["moved"]["dropped_assignee_ids"],
        json!([source_only.id])
    );
    let read = app.get(&path, Some(&target_viewer.token)).await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(
        read.body.get("moved").is_none(),
        "only the move's answer reports it"
    );
    app.get(&path, Some(&source_only.token)).await.problem(404);
    assert_eq!(
        titles(
            &app,
            &admin.token,
            &format!("/api/v1/projects/{source}/tasks")
        )
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        titles(
            &app,
            &admin.token,
            &format!("/api/v1/projects/{target}/tasks")
        )
        .await,
        ["moved"]
    );
    // Each member hears it as it is for them: gone, new, or changed.
    let gone = heard_by_source_only.next_event().await;
    assert_eq!(gone.name(), "task.deleted");
    assert_eq!(gone.json()["project_id"], source.as_str());
    // The viewer heard `both`'s two role changes first.
    for _ in 0..2 {
        assert_eq!(heard_by_viewer.next_event().await.name(), "member.updated");
    }
    let arrived = heard_by_viewer.next_event().await;
    assert_eq!(arrived.name(), "task.created");
    assert_eq!(arrived.json()["project_id"], target.as_str());
    // `both` heard their two role changes first.
    for _ in 0..2 {
        assert_eq!(heard_by_both.next_event().await.name(), "member.updated");
    }
    let changed = heard_by_both.next_event().await;
    assert_eq!(changed.name(), "task.updated");
    assert_eq!(changed.json()["task"]["project_id"], target.as_str());

    // Given explicitly, the lists are checked against the target.
    let back = app
        .patch(
            &path,
            Some(&both.token),
            json!({"project_id": source, "label_ids": [target_bug]}),
        )
        .await;
    back.problem(422);
    let back = app
        .patch(
            &path,
            Some(&both.token),
            json!({"project_id": source, "label_ids": [bug], "assignee_ids": [source_only.id]}),
        )
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text);
    assert_eq!(back.body["label_ids"], json!([bug]));
    assert_eq!(back.body["assignee_ids"], json!([source_only.id]));
    // A stale If-Match moves nothing.
    let stale = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&both.token)
        .header("If-Match", "\"1\"")
        .json(&json!({"project_id": target}))
        .send()
        .await
        .expect("send");
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        app.get(&path, Some(&both.token)).await.body["project_id"],
        source.as_str()
    );
}

both_backends!(comments_are_counted_on_their_task_and_heard_in_the_feed);
async fn comments_are_counted_on_their_task_and_heard_in_the_feed(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = person(&app, "admin").await;
    let editor = person(&app, "editor").await;
    let project = project_named(&app, &admin, "Launch", &[]).await;
    let task = app
        .create_task(
            &admin.token,
            json!({"title": "talked about", "project_id": project}),
        )
        .await;
    let path = format!("/api/v1/tasks/{}", id_of(&task));
    let mut stream = Stream::open(&app, &admin.token, None).await;
    // Membership events.
    let added = app
        .post(
            &format!("/api/v1/projects/{project}/members"),
            Some(&admin.token),
            json!({"email": editor.email, "role": "editor"}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    let joined = stream.next_event().await;
    assert_eq!(joined.name(), "member.added");
    assert_eq!(joined.json()["member"]["role"], "editor");
    assert_eq!(joined.json()["project_id"], project.as_str());
    // The new member's own feed hears that they joined.
    let mut editor_stream = Stream::open(&app, &editor.token, Some("0")).await;
    assert_eq!(editor_stream.next_event().await.name(), "member.added");

    let mut comment_ids = Vec::new();
    for n in 0..3 {
        let created = app
            .post(
                &format!("{path}/comments"),
                Some(&editor.token),
                json!({"body": format!("comment {n}")}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        comment_ids.push(id_of(&created.body));
        let heard = stream.next_event().await;
        assert_eq!(heard.name(), "comment.created");
        assert_eq!(heard.json()["comment_count"], n + 1);
        assert_eq!(heard.json()["comment"]["body"], format!("comment {n}"));
        assert_eq!(heard.json()["task_id"], task["id"]);
    }
    let counted = app.get(&path, Some(&admin.token)).await;
    assert_eq!(counted.body["comment_count"], 3);
    assert_eq!(
        counted.body["version"], 1,
        "a comment does not change the task's version"
    );
    let listed = app
        .get(
            &format!("/api/v1/projects/{project}/tasks"),
            Some(&admin.token),
        )
        .await;
    assert_eq!(listed.body["items"][0]["comment_count"], 3);
    let edited = app
        .patch(
            &format!("{path}/comments/{}", comment_ids[0]),
            Some(&editor.token),
            json!({"body": "comment 0, edited"}),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.text);
    let heard = stream.next_event().await;
    assert_eq!(heard.name(), "comment.updated");
    assert_eq!(heard.json()["comment_count"], 3);
    let deleted = app
        .request(
            Method::DELETE,
            &format!("{path}/comments/{}", comment_ids[1]),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    let heard = stream.next_event().await;
    assert_eq!(heard.name(), "comment.deleted");
    assert_eq!(heard.json()["comment_count"], 2);
    assert_eq!(heard.json()["comment"], Value::Null);
    assert_eq!(
        app.get(&path, Some(&admin.token)).await.body["comment_count"],
        2
    );
    // A refused comment counts nothing.
    let viewer_change = app
        .patch(
            &format!("/api/v1/projects/{project}/members/{}", editor.id),
            Some(&admin.token),
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(viewer_change.status, StatusCode::OK);
    assert_eq!(stream.next_event().await.name(), "member.updated");
    let refused = app
        .post(
            &format!("{path}/comments"),
            Some(&editor.token),
            json!({"body": "no"}),
        )
        .await;
    refused.problem(403);
    assert_eq!(
        app.get(&path, Some(&admin.token)).await.body["comment_count"],
        2
    );
    // Label events carry the label.
    let created = app
        .post(
            &format!("/api/v1/projects/{project}/labels"),
            Some(&admin.token),
            json!({"name": "Bug", "color": "#aa0000"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let heard = stream.next_event().await;
    assert_eq!(heard.name(), "label.created");
    assert_eq!(heard.json()["label"]["name"], "Bug");
    let renamed = app
        .patch(
            &format!("/api/v1/projects/{project}/labels/{}", id_of(&created.body)),
            Some(&admin.token),
            json!({"name": "Defect"}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK);
    let heard = stream.next_event().await;
    assert_eq!(heard.name(), "label.updated");
    assert_eq!(heard.json()["label"]["name"], "Defect");
    // `?project_id=` narrows these too: the admin's Inbox stream of another project is quiet.
    let mut narrowed = Stream::open_at(
        &app,
        &format!("/api/v1/tasks/events?project_id={project}"),
        &admin.token,
    )
    .await;
    app.create_task(&admin.token, json!({"title": "inbox"}))
        .await;
    app.post(
        &format!("{path}/comments"),
        Some(&admin.token),
        json!({"body": "last"}),
    )
    .await;
    assert_eq!(narrowed.next_event().await.name(), "comment.created");
}

// The rule "assignees are members" holds whatever the timing: a member removed while
// someone assigns them is never left assigned (each round races the two writes).
both_backends!(a_member_removed_while_being_assigned_is_never_left_assigned);
async fn a_member_removed_while_being_assigned_is_never_left_assigned(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = person(&app, "admin").await;
    let project = project_named(&app, &admin, "Launch", &[]).await;
    let mut outcomes = HashSet::new();
    for round in 0..8 {
        let member = person(&app, &format!("member{round}")).await;
        let added = app
            .post(
                &format!("/api/v1/projects/{project}/members"),
                Some(&admin.token),
                json!({"email": member.email, "role": "editor"}),
            )
            .await;
        assert_eq!(added.status, StatusCode::CREATED);
        let task = app
            .create_task(
                &admin.token,
                json!({"title": format!("t{round}"), "project_id": project}),
            )
            .await;
        let path = format!("/api/v1/tasks/{}", id_of(&task));
        let remove_path = format!("/api/v1/projects/{project}/members/{}", member.id);
        let (assigned, removed) = tokio::join!(
            app.patch(
                &path,
                Some(&admin.token),
                json!({"assignee_ids": [member.id]})
            ),
            app.request(Method::DELETE, &remove_path, Some(&admin.token), None),
        );
        assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
        assert!(
            matches!(
                assigned.status,
                StatusCode::OK | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "{}",
            assigned.text
        );
        outcomes.insert(assigned.status);
        let now = app.get(&path, Some(&admin.token)).await;
        assert_eq!(
            now.body["assignee_ids"],
            json!([]),
            "round {round}: {}",
            now.text
        );
    }
    assert!(!outcomes.is_empty());
}

/// Runs `sql` in `blocker` (which holds a feed lock the request waits for) and commits it,
/// 300 ms after `request` started: the request's statement began before the change and
/// resumes after it.
async fn while_waiting<T>(
    blocker: sea_orm::DatabaseTransaction,
    sql: String,
    request: impl std::future::Future<Output = T>,
) -> T {
    use sea_orm::ConnectionTrait;
    let change = async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        blocker.execute_unprepared(&sql).await.expect("change");
        blocker.commit().await.expect("commit");
    };
    tokio::join!(request, change).0
}

// Found by an attack helper (PostgreSQL): a write that waited for the feed locks while its
// caller was removed from the project went through (its statement read the membership
// before the wait); a write by someone else then fanned its event out to the removed
// member, whose replay showed it; a comment on a task that moved meanwhile went to the old
// project's members; and a move into a project deleted meanwhile was a 500. Each race is
// made certain here: the request waits behind a feed lock the test holds while the test
// makes the change and commits.
#[tokio::test]
async fn writes_that_waited_see_the_removals_and_moves_that_committed_meanwhile() {
    let app = spawn_app(Backend::Postgres).await;
    let alice = person(&app, "alice").await;
    let carol = person(&app, "carol").await;
    let project = project_named(&app, &alice, "A", &[(&carol, "editor")]).await;
    let elsewhere = project_named(&app, &alice, "B", &[]).await;
    let task = app
        .create_task(
            &alice.token,
            json!({"title": "secret", "project_id": project}),
        )
        .await;
    let path = format!("/api/v1/tasks/{}", id_of(&task));

    // Carol's edit waits while she is removed: refused, nothing changed.
    let blocker = app.hold_feed_lock(&alice.id).await;
    let removal = format!(
        "DELETE FROM project_members WHERE project_id = '{project}' AND user_id = '{}'",
        carol.id
    );
    let edit = while_waiting(
        blocker,
        removal,
        app.patch(&path, Some(&carol.token), json!({"title": "stolen"})),
    )
    .await;
    edit.problem(404);
    assert_eq!(
        app.get(&path, Some(&alice.token)).await.body["title"],
        "secret"
    );

    // Alice's edit, fanned out while Carol was being removed, does not reach Carol's replay.
    let re_add = format!(
        "INSERT INTO project_members (project_id, user_id, role, created_at) \
         VALUES ('{project}', '{}', 2, now())",
        carol.id
    );
    sea_orm::ConnectionTrait::execute_unprepared(&app.state.db, &re_add)
        .await
        .expect("re-add carol");
    let blocker = app.hold_feed_lock(&alice.id).await;
    let removal = format!(
        "DELETE FROM project_members WHERE project_id = '{project}' AND user_id = '{}'",
        carol.id
    );
    let edit = while_waiting(
        blocker,
        removal,
        app.patch(
            &path,
            Some(&alice.token),
            json!({"title": "after carol left"}),
        ),
    )
    .await;
    assert_eq!(edit.status, StatusCode::OK, "{}", edit.text);
    let mut stream = Stream::open(&app, &carol.token, Some("0")).await;
    let own = app
        .create_task(&carol.token, json!({"title": "carol's own"}))
        .await;
    let first = stream.next_event().await;
    assert_eq!(
        first.json()["task_id"],
        own["id"],
        "nothing of the project she left"
    );

    // A comment on a task moved meanwhile is refused for a retry, not told to the old
    // project's members.
    let blocker = app.hold_feed_lock(&alice.id).await;
    let moved = format!(
        "UPDATE tasks SET user_id = '{elsewhere}' WHERE id = '{}'",
        id_of(&task)
    );
    let comment = while_waiting(
        blocker,
        moved,
        app.post(
            &format!("{path}/comments"),
            Some(&alice.token),
            json!({"body": "hi"}),
        ),
    )
    .await;
    comment.problem(503);
    assert_eq!(
        app.get(&path, Some(&alice.token)).await.body["comment_count"],
        0
    );

    // A move into a project deleted meanwhile is a 404, not a 500.
    let third = project_named(&app, &alice, "C", &[]).await;
    let blocker = app.hold_feed_lock(&alice.id).await;
    let deleted = format!("DELETE FROM projects WHERE id = '{third}'");
    let move_there = while_waiting(
        blocker,
        deleted,
        app.patch(&path, Some(&alice.token), json!({"project_id": third})),
    )
    .await;
    move_there.problem(404);
    assert_eq!(
        app.get(&path, Some(&alice.token)).await.body["project_id"],
        elsewhere.as_str()
    );
}

// A membership has a version: a role change bumps it, and `If-Match` makes a role change or
// a removal conditional on it (412 when someone changed the member meanwhile).
both_backends!(member_changes_honour_if_match);
async fn member_changes_honour_if_match(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = person(&app, "admin").await;
    let member = person(&app, "member").await;
    let project = project_named(&app, &admin, "Launch", &[]).await;
    let added = app
        .post(
            &format!("/api/v1/projects/{project}/members"),
            Some(&admin.token),
            json!({"email": member.email, "role": "viewer"}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    assert_eq!(added.body["version"], 1);
    assert_eq!(added.header("etag"), Some("\"1\""));
    let path = format!("/api/v1/projects/{project}/members/{}", member.id);
    let conditional = |method: Method, tag: &'static str, body: Option<Value>| {
        let mut request = app
            .client
            .request(method, app.url(&path))
            .bearer_auth(&admin.token)
            .header("If-Match", tag);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let promoted = conditional(Method::PATCH, "\"1\"", Some(json!({"role": "editor"})))
        .await
        .expect("send");
    assert_eq!(promoted.status(), StatusCode::OK);
    let promoted: Value = promoted.json().await.expect("json");
    assert_eq!(promoted["version"], 2);
    assert_eq!(promoted["role"], "editor");
    // Stale: nothing changes.
    let stale = conditional(Method::PATCH, "\"1\"", Some(json!({"role": "admin"})))
        .await
        .expect("send");
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let stale = conditional(Method::DELETE, "\"1\"", None)
        .await
        .expect("send");
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let listed = app
        .get(
            &format!("/api/v1/projects/{project}/members"),
            Some(&admin.token),
        )
        .await;
    let row = listed.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|row| row["user_id"] == member.id.as_str())
        .cloned()
        .expect("still a member");
    assert_eq!(row["role"], "editor");
    assert_eq!(row["version"], 2);
    let removed = conditional(Method::DELETE, "\"2\"", None)
        .await
        .expect("send");
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
}

// Found by a second attack round (PostgreSQL): label writes and keyed task creates that
// waited for the feed locks while their caller was removed still went through. Made certain
// as above: the request waits behind a feed lock the test holds while it removes the caller.
#[tokio::test]
async fn label_writes_and_keyed_creates_that_waited_see_the_removal() {
    let app = spawn_app(Backend::Postgres).await;
    let alice = person(&app, "alice").await;
    let bob = person(&app, "bob").await;
    let project = project_named(&app, &alice, "A", &[(&bob, "admin")]).await;
    let kept = label(&app, &alice, &project, "Kept").await;
    let removal = format!(
        "DELETE FROM project_members WHERE project_id = '{project}' AND user_id = '{}'",
        bob.id
    );
    let labels = format!("/api/v1/projects/{project}/labels");
    let attempts: Vec<(Method, String, Option<Value>, Option<&str>)> = vec![
        (
            Method::POST,
            labels.clone(),
            Some(json!({"name": "Late"})),
            None,
        ),
        (
            Method::PATCH,
            format!("{labels}/{kept}"),
            Some(json!({"name": "Renamed"})),
            None,
        ),
        (Method::DELETE, format!("{labels}/{kept}"), None, None),
        (
            Method::POST,
            "/api/v1/tasks".to_string(),
            Some(json!({"title": "late", "project_id": project})),
            Some("late-task"),
        ),
    ];
    for (method, path, body, key) in attempts {
        let restore = format!(
            "INSERT INTO project_members (project_id, user_id, role, created_at) \
             VALUES ('{project}', '{}', 3, now()) ON CONFLICT DO NOTHING",
            bob.id
        );
        sea_orm::ConnectionTrait::execute_unprepared(&app.state.db, &restore)
            .await
            .expect("bob back in");
        let blocker = app.hold_feed_lock(&alice.id).await;
        let mut request = app
            .client
            .request(method.clone(), app.url(&path))
            .bearer_auth(&bob.token);
        if let Some(body) = &body {
            request = request.json(body);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let reply = while_waiting(blocker, removal.clone(), request.send())
            .await
            .expect("send");
        let status = reply.status();
        assert!(
            matches!(
                status,
                StatusCode::NOT_FOUND | StatusCode::SERVICE_UNAVAILABLE
            ),
            "{method} {path}: {status}"
        );
    }
    let listed = app.get(&labels, Some(&alice.token)).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed.body["items"][0]["name"], "Kept");
    let tasks = app
        .get(
            &format!("/api/v1/projects/{project}/tasks"),
            Some(&alice.token),
        )
        .await;
    assert_eq!(tasks.body["total"], 0);
}
