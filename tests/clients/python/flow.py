"""The typed-client flow, through the Python client that openapi-python-client generates
from `taskapi openapi` (.ci/clients.sh puts it on PYTHONPATH as `taskapi_client`).

Runs against an empty database at $TASKAPI_BASE_URL: register, login, refresh, create with
an Idempotency-Key and its replay, list with filters and a cursor walk to the end, get,
PATCH with If-Match (and a stale one: 412), delete, then a 404 and a 422 read as typed
Problem values. Prints one line per step; exits non-zero at the first failed check.
"""

import os
import sys
import uuid

from taskapi_client import AuthenticatedClient, Client
from taskapi_client.api.auth import login, refresh_token, register
from taskapi_client.api.tasks import (
    create_task,
    delete_task,
    get_task,
    list_tasks,
    update_task,
)
from taskapi_client.models import (
    CreateTaskRequest,
    LoginRequest,
    Priority,
    Problem,
    RefreshRequest,
    RegisterRequest,
    Task,
    TaskPage,
    TaskSort,
    TaskStatus,
    TokenPair,
    UpdateTaskRequest,
    User,
)
from taskapi_client.types import Response

BASE_URL = os.environ["TASKAPI_BASE_URL"]
EMAIL = "py-flow@example.com"
PASSWORD = "correct horse battery"


def check(condition: bool, what: str) -> None:
    if not condition:
        print(f"python flow: FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"python flow: ok: {what}")


def expect(response: Response, status: int, kind: type, what: str):
    """The parsed body, checked to be `kind` and to have come with `status`."""
    check(
        response.status_code == status and isinstance(response.parsed, kind),
        f"{what} -> {status} {kind.__name__} (got {response.status_code.value} "
        f"{type(response.parsed).__name__})",
    )
    return response.parsed


def main() -> None:
    public = Client(base_url=BASE_URL, raise_on_unexpected_status=True)

    user = expect(
        register.sync_detailed(
            client=public,
            body=RegisterRequest(name="Py Flow", email=EMAIL, password=PASSWORD),
        ),
        201,
        User,
        "register",
    )
    check(user.email == EMAIL, "registered user has the email sent")

    tokens = expect(
        login.sync_detailed(client=public, body=LoginRequest(email=EMAIL, password=PASSWORD)),
        200,
        TokenPair,
        "login",
    )
    refreshed = expect(
        refresh_token.sync_detailed(
            client=public, body=RefreshRequest(refresh_token=tokens.refresh_token)
        ),
        200,
        TokenPair,
        "refresh",
    )
    check(refreshed.refresh_token != tokens.refresh_token, "refresh rotates the refresh token")

    api = AuthenticatedClient(
        base_url=BASE_URL, token=refreshed.access_token, raise_on_unexpected_status=True
    )

    key = str(uuid.uuid4())
    body = CreateTaskRequest(title="Write the report", priority=Priority.HIGH)
    first = create_task.sync_detailed(client=api, body=body, idempotency_key=key)
    created = expect(first, 201, Task, "create with Idempotency-Key")
    check("ETag" in first.headers and "Location" in first.headers, "create sends ETag and Location")
    replay = create_task.sync_detailed(client=api, body=body, idempotency_key=key)
    replayed = expect(replay, 201, Task, "replay of the same key and body")
    check(
        replayed.id == created.id and replay.headers.get("Idempotent-Replayed") == "true",
        "the replay returns the same task with Idempotent-Replayed: true",
    )

    for i in range(5):
        expect(
            create_task.sync_detailed(
                client=api,
                body=CreateTaskRequest(title=f"Filler {i}", priority=Priority.LOW),
            ),
            201,
            Task,
            f"create filler task {i}",
        )

    page = expect(
        list_tasks.sync_detailed(
            client=api, status=TaskStatus.TODO, priority=Priority.LOW, sort=TaskSort.TITLE, limit=2
        ),
        200,
        TaskPage,
        "list todo/low, sorted by title, 2 per page",
    )
    check(page.total == 5 and len(page.items) == 2, "first page: total 5, 2 items")
    titles = [task.title for task in page.items]
    pages = 1
    while page.next_cursor:
        page = expect(
            list_tasks.sync_detailed(
                client=api,
                status=TaskStatus.TODO,
                priority=Priority.LOW,
                sort=TaskSort.TITLE,
                limit=2,
                cursor=page.next_cursor,
            ),
            200,
            TaskPage,
            f"cursor page {pages + 1}",
        )
        titles += [task.title for task in page.items]
        pages += 1
    check(
        pages == 3 and titles == [f"Filler {i}" for i in range(5)],
        f"cursor walk: 3 pages, the 5 fillers in title order (got {pages} pages, {titles})",
    )

    fetched = get_task.sync_detailed(created.id, client=api)
    task = expect(fetched, 200, Task, "get")
    etag = fetched.headers["ETag"]
    check(task.version == created.version and etag == f'"{task.version}"', "get sends the version as ETag")

    patched = update_task.sync_detailed(
        created.id,
        client=api,
        body=UpdateTaskRequest(status=TaskStatus.IN_PROGRESS),
        if_match=etag,
    )
    updated = expect(patched, 200, Task, "PATCH with the current If-Match")
    check(
        updated.status == TaskStatus.IN_PROGRESS and updated.version == task.version + 1,
        "PATCH changed the status and the version",
    )
    stale = expect(
        update_task.sync_detailed(
            created.id, client=api, body=UpdateTaskRequest(title="Too late"), if_match=etag
        ),
        412,
        Problem,
        "PATCH with a stale If-Match",
    )
    check(stale.status == 412, "the 412 is a Problem with status 412")

    gone = delete_task.sync_detailed(created.id, client=api, if_match=patched.headers["ETag"])
    check(gone.status_code == 204, f"delete -> 204 (got {gone.status_code.value})")

    missing = expect(get_task.sync_detailed(created.id, client=api), 404, Problem, "get after delete")
    check(missing.status == 404 and missing.type_.endswith("/not-found"), "the 404 is a not-found Problem")

    invalid = expect(
        create_task.sync_detailed(client=api, body=CreateTaskRequest(title="   ")),
        422,
        Problem,
        "create with a blank title",
    )
    check(
        invalid.status == 422
        and isinstance(invalid.errors, list)
        and any(error.field == "title" for error in invalid.errors),
        "the 422 is a Problem naming the field title",
    )
    print("python flow: all checks passed")


if __name__ == "__main__":
    main()
