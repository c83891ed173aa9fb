// The typed-client flow, through openapi-fetch over the types openapi-typescript generates
// from `taskapi openapi` (.ci/clients.sh writes them to tests/clients/generated/ and
// type-checks this file against them with tsc before running it with tsx).
//
// Runs against an empty database at $TASKAPI_BASE_URL: register, login, refresh, create with
// an Idempotency-Key and its replay, list with filters and a cursor walk to the end, get,
// PATCH with If-Match (and a stale one: 412), delete, then a 404 and a 422 read as typed
// Problem values. Prints one line per step; exits non-zero at the first failed check.
import createClient from "openapi-fetch";
import { randomUUID } from "node:crypto";

import type { components, paths } from "../generated/typescript/schema.d.ts";

type Problem = components["schemas"]["Problem"];

const baseUrl = process.env.TASKAPI_BASE_URL;
if (!baseUrl) throw new Error("TASKAPI_BASE_URL is not set");
const email = "ts-flow@example.com";
const password = "correct horse battery";

function check(condition: boolean, what: string): asserts condition {
  if (!condition) {
    console.error(`typescript flow: FAILED: ${what}`);
    process.exit(1);
  }
  console.log(`typescript flow: ok: ${what}`);
}

/** The body of a success: `data` is set, `error` is not, and the status is `status`. */
function ok<T>(result: { data?: T; error?: unknown; response: Response }, status: number, what: string): T {
  check(
    result.response.status === status && result.data !== undefined && result.error === undefined,
    `${what} -> ${status} (got ${result.response.status})`,
  );
  return result.data as T;
}

/** The typed Problem of a failure with `status`. */
function problem(result: { error?: Problem; response: Response }, status: number, what: string): Problem {
  const error = result.error;
  check(
    result.response.status === status && error !== undefined && error.status === status,
    `${what} -> ${status} Problem (got ${result.response.status})`,
  );
  check(
    result.response.headers.get("content-type") === "application/problem+json",
    `${what}: served as application/problem+json`,
  );
  return error;
}

const pub = createClient<paths>({ baseUrl });

const user = ok(
  await pub.POST("/api/v1/auth/register", { body: { name: "TS Flow", email, password } }),
  201,
  "register",
);
check(user.email === email, "registered user has the email sent");

const tokens = ok(await pub.POST("/api/v1/auth/login", { body: { email, password } }), 200, "login");
const refreshed = ok(
  await pub.POST("/api/v1/auth/refresh", { body: { refresh_token: tokens.refresh_token } }),
  200,
  "refresh",
);
check(refreshed.refresh_token !== tokens.refresh_token, "refresh rotates the refresh token");

const api = createClient<paths>({
  baseUrl,
  headers: { Authorization: `Bearer ${refreshed.access_token}` },
});

const key = randomUUID();
const body = { title: "Write the report", priority: "high" } as const;
const first = await api.POST("/api/v1/tasks", { body, params: { header: { "Idempotency-Key": key } } });
const created = ok(first, 201, "create with Idempotency-Key");
check(
  first.response.headers.has("etag") && first.response.headers.has("location"),
  "create sends ETag and Location",
);
const replay = await api.POST("/api/v1/tasks", { body, params: { header: { "Idempotency-Key": key } } });
const replayed = ok(replay, 201, "replay of the same key and body");
check(
  replayed.id === created.id && replay.response.headers.get("idempotent-replayed") === "true",
  "the replay returns the same task with Idempotent-Replayed: true",
);

for (let i = 0; i < 5; i++) {
  ok(
    await api.POST("/api/v1/tasks", { body: { title: `Filler ${i}`, priority: "low" } }),
    201,
    `create filler task ${i}`,
  );
}

const filters = { status: "todo", priority: "low", sort: "title", limit: 2 } as const;
let page = ok(
  await api.GET("/api/v1/tasks", { params: { query: filters } }),
  200,
  "list todo/low, sorted by title, 2 per page",
);
check(page.total === 5 && page.items.length === 2, "first page: total 5, 2 items");
const titles = page.items.map((task) => task.title);
let pages = 1;
while (page.next_cursor) {
  page = ok(
    await api.GET("/api/v1/tasks", { params: { query: { ...filters, cursor: page.next_cursor } } }),
    200,
    `cursor page ${pages + 1}`,
  );
  titles.push(...page.items.map((task) => task.title));
  pages++;
}
check(
  pages === 3 && JSON.stringify(titles) === JSON.stringify([0, 1, 2, 3, 4].map((i) => `Filler ${i}`)),
  `cursor walk: 3 pages, the 5 fillers in title order (got ${pages} pages, ${titles})`,
);

const path = { id: created.id };
const fetched = await api.GET("/api/v1/tasks/{id}", { params: { path } });
const task = ok(fetched, 200, "get");
const etag = fetched.response.headers.get("etag");
check(task.version === created.version && etag === `"${task.version}"`, "get sends the version as ETag");

const patched = await api.PATCH("/api/v1/tasks/{id}", {
  params: { path, header: { "If-Match": etag } },
  body: { status: "in_progress" },
});
const updated = ok(patched, 200, "PATCH with the current If-Match");
check(
  updated.status === "in_progress" && updated.version === task.version + 1,
  "PATCH changed the status and the version",
);
problem(
  await api.PATCH("/api/v1/tasks/{id}", {
    params: { path, header: { "If-Match": etag } },
    body: { title: "Too late" },
  }),
  412,
  "PATCH with a stale If-Match",
);

const gone = await api.DELETE("/api/v1/tasks/{id}", {
  params: { path, header: { "If-Match": patched.response.headers.get("etag") ?? "" } },
});
check(gone.response.status === 204, `delete -> 204 (got ${gone.response.status})`);

const missing = problem(await api.GET("/api/v1/tasks/{id}", { params: { path } }), 404, "get after delete");
check(missing.type.endsWith("/not-found"), "the 404 is a not-found Problem");

const invalid = problem(await api.POST("/api/v1/tasks", { body: { title: "   " } }), 422, "create with a blank title");
check(invalid.errors?.some((error) => error.field === "title") === true, "the 422 is a Problem naming the field title");

console.log("typescript flow: all checks passed");
