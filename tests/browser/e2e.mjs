// End-to-end test of the taskapi web front end in headless Chromium.
//
//   BASE_URL=http://127.0.0.1:8080 node e2e.mjs
//
// Needs a server with a fresh database (the first registered user becomes the
// admin). Uses Debian's /usr/bin/chromium through playwright-core; it never
// downloads a browser. Screenshots go to $ARTIFACTS_DIR
// (default artifacts/screenshots). Any console error, uncaught page error,
// CSP violation, request to another origin or unexpected HTTP error status
// fails the step in which it happened. The last line printed is
// "N passed, M failed".
//
// Environment:
//   BASE_URL          server under test (default http://127.0.0.1:8080)
//   ARTIFACTS_DIR     screenshot folder (default artifacts/screenshots)
//   CHROMIUM_PATH     browser executable (default /usr/bin/chromium)
//   E2E_TIMEOUT_MS    per-wait timeout (default 10000)
//   E2E_REQUIRE_CSP   "1" (default): the page must be served with the strict
//                     Content-Security-Policy; "0": inject it when missing.

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { chromium } from 'playwright-core';

const BASE_URL = (process.env.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const ORIGIN = new URL(BASE_URL).origin;
const ARTIFACTS_DIR = path.resolve(process.env.ARTIFACTS_DIR || 'artifacts/screenshots');
const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const TIMEOUT = Number(process.env.E2E_TIMEOUT_MS || 10000);
const REQUIRE_CSP = (process.env.E2E_REQUIRE_CSP ?? '1') !== '0';

const EXPECTED_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const RUN_ID = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4).toString(36)}`;
const ADMIN = { name: 'Ada Admin', email: `ada.${RUN_ID}@example.com`, password: 'correct-horse-battery-1' };
const USER = { name: 'Bob User', email: `bob.${RUN_ID}@example.com`, password: 'another-long-secret-2' };
// The second member of a shared project (user A of that scenario is ADMIN).
const MEMBER = { name: 'Carol Member', email: `carol.${RUN_ID}@example.com`, password: 'a-third-long-secret-3' };

/* ------------------------------------------------------------------ tiny runner */

const results = [];
let aborted = false;
let shotIndex = 0;
let page;
let context;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function log(line) {
  process.stdout.write(`${line}\n`);
}

function slug(text) {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);
}

async function screenshot(name) {
  if (!page) return;
  shotIndex += 1;
  const file = path.join(ARTIFACTS_DIR, `${String(shotIndex).padStart(2, '0')}-${slug(name)}.png`);
  try {
    // Whole page, unless a modal dialog is open: then what the user sees.
    const modal = await page.evaluate(() => Boolean(document.querySelector('dialog[open]'))).catch(() => false);
    if (!modal) await page.evaluate(() => window.scrollTo(0, 0)).catch(() => {});
    await page.screenshot({ path: file, fullPage: !modal, animations: 'disabled' });
  } catch (error) {
    log(`  (screenshot ${file} failed: ${error.message})`);
  }
}

class AssertionError extends Error {}

function assert(condition, message) {
  if (!condition) throw new AssertionError(message);
}

/** Poll `fn` until it returns a truthy value. */
async function until(description, fn, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  let lastError = null;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new AssertionError(`timed out after ${timeout} ms waiting for ${description}${lastError ? ` (${lastError.message})` : ''}`);
    }
    await sleep(100);
  }
}

async function expectText(locator, pattern, description) {
  let last = '';
  await until(`${description} to match ${pattern}`, async () => {
    last = (await locator.innerText()).trim();
    return pattern instanceof RegExp ? pattern.test(last) : last.includes(pattern);
  }).catch((error) => {
    throw new AssertionError(`${error.message}; last text: ${JSON.stringify(last)}`);
  });
}

const visible = (locator, description) =>
  locator.first().waitFor({ state: 'visible', timeout: TIMEOUT }).catch(() => {
    throw new AssertionError(`${description} is not visible`);
  });

const hidden = (locator, description) =>
  locator.first().waitFor({ state: 'hidden', timeout: TIMEOUT }).catch(() => {
    throw new AssertionError(`${description} is still visible`);
  });

/* ------------------------------------------------------------------ monitoring */

const monitor = {
  step: '(setup)',
  allowed: new Set(),
  problems: [],
  all: [],
  cspHeader: null,
  cspInjected: false,
  begin(step, allowedStatuses) {
    this.step = step;
    this.allowed = new Set(allowedStatuses);
    this.problems = [];
  },
  report(kind, text) {
    const entry = `${kind}: ${text}`;
    this.problems.push(entry);
    this.all.push(`[${this.step}] ${entry}`);
  },
};

const NETWORK_CONSOLE = /^Failed to load resource: the server responded with a status of (\d{3})/;

async function attachMonitors(p) {
  p.on('console', (message) => {
    if (message.type() !== 'error') return;
    const text = message.text();
    // HTTP error statuses are judged by the response listener below.
    if (NETWORK_CONSOLE.test(text)) return;
    monitor.report('console error', text);
  });
  p.on('pageerror', (error) => monitor.report('uncaught page error', error.message));
  p.on('response', (response) => {
    const status = response.status();
    if (status < 400) return;
    const url = new URL(response.url());
    if (url.origin !== ORIGIN) return;
    if (!monitor.allowed.has(status)) {
      monitor.report('unexpected HTTP status', `${status} ${response.request().method()} ${url.pathname}${url.search}`);
    }
  });
  p.on('request', (request) => {
    const url = request.url();
    if (url.startsWith('data:') || url.startsWith('blob:') || url.startsWith('about:')) return;
    if (new URL(url).origin !== ORIGIN) monitor.report('request to another origin', url);
  });
  p.on('requestfailed', (request) => {
    const failure = request.failure()?.errorText || 'failed';
    if (failure.includes('ERR_ABORTED')) return; // navigation cancelled an in-flight fetch
    monitor.report('request failed', `${request.method()} ${request.url()} ${failure}`);
  });
  await p.exposeBinding('__e2eCspViolation', (_source, detail) => {
    monitor.report('CSP violation', detail);
  });
  await p.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      const detail = `${event.violatedDirective} blocked ${event.blockedURI || '(inline)'} at ${event.sourceFile || ''}:${event.lineNumber || 0}`;
      window.__e2eCspViolation(detail);
    });
  });
  // Check (or, when allowed, supply) the Content-Security-Policy of documents.
  await p.route(
    (url) => url.origin === ORIGIN && (url.pathname === '/' || url.pathname.endsWith('.html')),
    async (route) => {
      if (route.request().resourceType() !== 'document') {
        await route.continue();
        return;
      }
      const response = await route.fetch();
      const headers = response.headers();
      monitor.cspHeader = headers['content-security-policy'] ?? null;
      if (!monitor.cspHeader && !REQUIRE_CSP) {
        headers['content-security-policy'] = EXPECTED_CSP;
        monitor.cspInjected = true;
      }
      await route.fulfill({ response, headers });
    },
  );
}

async function step(name, fn, { allow = [] } = {}) {
  if (aborted) {
    results.push({ name, status: 'skipped' });
    log(`- skipped: ${name}`);
    return;
  }
  monitor.begin(name, allow);
  const started = Date.now();
  try {
    await fn();
    await sleep(200); // let late console/response events arrive
    if (monitor.problems.length) {
      throw new AssertionError(`browser reported problems:\n    ${monitor.problems.join('\n    ')}`);
    }
    results.push({ name, status: 'passed' });
    log(`✔ ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    results.push({ name, status: 'failed', error });
    log(`✘ ${name} (${Date.now() - started} ms)`);
    log(`    ${error instanceof AssertionError ? error.message : error.stack || error}`);
    if (monitor.problems.length && !(error instanceof AssertionError && error.message.startsWith('browser reported'))) {
      log(`    browser reported meanwhile:\n      ${monitor.problems.join('\n      ')}`);
    }
    await screenshot(`FAILED ${name}`);
    aborted = true; // later steps build on this one
  }
}

/* ------------------------------------------------------------------ page helpers */

const byTestId = (id) => page.getByTestId(id);
const taskItem = (title) => byTestId('task-item').filter({ hasText: title });
const userRow = (email) => page.locator(`[data-testid="user-row"][data-email="${email}"]`);
const projectItem = (name) => byTestId('project-item').filter({ hasText: name });
const memberItem = (email) => page.locator(`[data-testid="member-item"][data-email="${email}"]`);
const labelRow = (name) => page.locator(`[data-testid="label-item"][data-name="${name}"]`);
/** The checkbox of a picker option (task editor, label filter) by its data-<attr> value. */
const pickerOption = (testId, attr, value) =>
  page.locator(`label.picker-option[data-${attr}="${value}"] [data-testid="${testId}"]`);

async function storage() {
  return page.evaluate(() => ({
    access: sessionStorage.getItem('taskapi.access_token'),
    refresh: sessionStorage.getItem('taskapi.refresh_token'),
    user: JSON.parse(sessionStorage.getItem('taskapi.user') || 'null'),
  }));
}

async function waitReady() {
  await page.waitForSelector('html.ready', { state: 'attached', timeout: TIMEOUT });
}

async function register({ name, email, password }) {
  await byTestId('auth-tab-register').click();
  await byTestId('register-name').fill(name);
  await byTestId('register-email').fill(email);
  await byTestId('register-password').fill(password);
  await byTestId('register-submit').click();
}

async function login({ email, password }) {
  await visible(byTestId('auth-view'), 'sign-in view');
  await byTestId('auth-tab-login').click();
  await byTestId('login-email').fill(email);
  await byTestId('login-password').fill(password);
  await byTestId('login-submit').click();
  await visible(byTestId('tasks-view'), 'task view after login');
}

async function logout() {
  await byTestId('logout-button').click();
  await visible(byTestId('auth-view'), 'sign-in view after logout');
  const s = await storage();
  assert(!s.access && !s.refresh, 'tokens are still in sessionStorage after logout');
}

async function createTaskViaApi(task) {
  const result = await page.evaluate(async (body) => {
    const token = sessionStorage.getItem('taskapi.access_token');
    const response = await fetch('/api/v1/tasks', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: await response.text() };
  }, task);
  assert(result.status === 201, `POST /api/v1/tasks returned ${result.status}: ${result.body}`);
}

async function patchTaskViaApi(id, body) {
  const result = await page.evaluate(async ({ id: taskId, body: changes }) => {
    const token = sessionStorage.getItem('taskapi.access_token');
    const response = await fetch(`/api/v1/tasks/${taskId}`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify(changes),
    });
    return { status: response.status, body: await response.text() };
  }, { id, body });
  assert(result.status === 200, `PATCH /api/v1/tasks/${id} returned ${result.status}: ${result.body}`);
}

/** A request to the API from the page, with its access token: `{ status, type, body }`. */
async function apiFetch(method, url, body) {
  return page.evaluate(async ({ method: m, url: u, body: b }) => {
    const token = sessionStorage.getItem('taskapi.access_token');
    const headers = { Authorization: `Bearer ${token}` };
    if (b !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(u, { method: m, headers, body: b === undefined ? undefined : JSON.stringify(b) });
    const text = await response.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: response.status, type: response.headers.get('content-type') || '', body: json ?? text };
  }, { method, url, body });
}

async function selectOption(testId, value) {
  await byTestId(testId).selectOption(value);
}

function futureDay(days) {
  const d = new Date(Date.now() + days * 86400000);
  return d.toISOString().slice(0, 10);
}

/* ------------------------------------------------------------------ the flow */

async function main() {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  log(`taskapi browser e2e against ${BASE_URL} (run ${RUN_ID})`);
  log(`screenshots: ${ARTIFACTS_DIR}`);

  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60000,
  });
  try {
    context = await browser.newContext({
      viewport: { width: 1280, height: 860 },
      deviceScaleFactor: 1,
      colorScheme: 'light',
      locale: 'en-US',
      timezoneId: 'UTC',
    });
    context.setDefaultTimeout(TIMEOUT);
    page = await context.newPage();
    await attachMonitors(page);
    await flow();
  } finally {
    await browser.close().catch(() => {});
  }
}

async function flow() {
  const firstTask = 'Write the quarterly report';
  const editedTask = 'Write and send the quarterly report';

  await step('home page loads under the strict CSP and shows the sign-in form', async () => {
    const response = await page.goto(`${BASE_URL}/`, { waitUntil: 'load' });
    assert(response && response.ok(), `GET / returned ${response?.status()}`);
    await waitReady();
    await visible(byTestId('auth-view'), 'sign-in view');
    await visible(byTestId('login-form'), 'login form');
    await hidden(byTestId('tasks-view'), 'task view');
    if (REQUIRE_CSP) {
      assert(monitor.cspHeader, 'GET / was served without a Content-Security-Policy header');
    }
    const csp = monitor.cspHeader || EXPECTED_CSP;
    for (const directive of ["script-src 'self'", "style-src 'self'", "connect-src 'self'"]) {
      assert(csp.includes(directive), `Content-Security-Policy lacks "${directive}": ${csp}`);
    }
    assert(!/unsafe-inline|unsafe-eval/.test(csp), `Content-Security-Policy allows unsafe sources: ${csp}`);
    const cookies = await context.cookies();
    assert(cookies.length === 0, `unexpected cookies: ${cookies.map((c) => c.name).join(', ')}`);
    await screenshot('sign-in');
  });

  await step('first user registers, is signed in and is the admin', async () => {
    await register(ADMIN);
    await visible(byTestId('tasks-view'), 'task view after registration');
    await expectText(byTestId('current-user-name'), ADMIN.name, 'user name in the header');
    await expectText(byTestId('current-user-role'), /admin/i, 'role badge');
    await visible(byTestId('nav-admin'), 'Users tab (the first user must be admin: is the database fresh?)');
    await visible(byTestId('tasks-empty'), 'empty task list message');
    const s = await storage();
    assert(s.access, 'no access token in sessionStorage');
    assert(s.user?.role === 'admin', `stored user role is ${s.user?.role}`);
    const cookies = await context.cookies();
    assert(cookies.length === 0, `the front end must not use cookies, found: ${cookies.map((c) => c.name).join(', ')}`);
    await screenshot('admin-empty-tasks');
  });

  await step('log out and log in again', async () => {
    await logout();
    await screenshot('logged-out');
    await login(ADMIN);
    await expectText(byTestId('current-user-role'), /admin/i, 'role badge');
    const s = await storage();
    assert(s.access, 'no access token in sessionStorage after login');
  });

  await step('wrong password shows the API error on the login form', async () => {
    await logout();
    await byTestId('login-email').fill(ADMIN.email);
    await byTestId('login-password').fill('not-the-right-password');
    await byTestId('login-submit').click();
    await visible(byTestId('login-error'), 'login error message');
    await expectText(byTestId('login-error'), /\S/, 'login error message');
    await hidden(byTestId('tasks-view'), 'task view');
    await login(ADMIN);
  }, { allow: [401] });

  await step('admin sees the Users view listing their account', async () => {
    await byTestId('nav-admin').click();
    await visible(byTestId('admin-view'), 'Users view');
    const row = userRow(ADMIN.email);
    await visible(row, `user row for ${ADMIN.email}`);
    await expectText(row.getByTestId('user-role'), /admin/i, 'admin role badge');
    assert(await row.getByTestId('user-delete').isDisabled(), 'admin can delete their own row');
    await expectText(byTestId('users-summary'), /1 account/, 'users summary');
    await screenshot('admin-users');
    await byTestId('nav-tasks').click();
    await visible(byTestId('tasks-view'), 'task view');
  });

  await step('creating a task without a title shows the field error', async () => {
    await byTestId('new-task-title').fill('   ');
    await byTestId('new-task-submit').click();
    await visible(byTestId('new-task-title-error'), 'title error');
    await expectText(byTestId('new-task-title-error'), /\S/, 'title error');
    assert(
      (await byTestId('new-task-title').getAttribute('aria-invalid')) === 'true',
      'title input is not marked aria-invalid',
    );
    await screenshot('task-title-error');
  }, { allow: [422] });

  await step('create a task', async () => {
    await byTestId('new-task-title').fill(firstTask);
    await byTestId('new-task-priority').selectOption('high');
    await byTestId('new-task-due').fill(futureDay(10));
    await byTestId('new-task-description').fill('Numbers from finance, charts from the dashboard.');
    await byTestId('new-task-submit').click();
    const item = taskItem(firstTask);
    await visible(item, 'the new task');
    await hidden(byTestId('new-task-title-error'), 'stale title error');
    assert((await item.getAttribute('data-priority')) === 'high', 'priority is not high');
    assert((await item.getAttribute('data-status')) === 'todo', 'status is not todo');
    await expectText(item.getByTestId('task-due'), /Due /, 'due date');
    await expectText(byTestId('tasks-summary'), /^1 task$/, 'task count');
    assert((await byTestId('new-task-title').inputValue()) === '', 'form was not reset');
    await screenshot('task-created');
  });

  await step('a second tab sees creates, edits and deletes live, without a reload', async () => {
    // Tab B: a page of its own (sessionStorage is per tab), signed in as the same user.
    const pageA = page;
    const pageB = await context.newPage();
    await attachMonitors(pageB);
    const liveTask = 'Changed in the other tab';
    try {
      page = pageB;
      await pageB.goto(BASE_URL);
      await waitReady();
      await login(ADMIN);
      await visible(taskItem(firstTask), 'the existing task in tab B');
      let navigations = 0;
      pageB.on('framenavigated', (frame) => {
        if (frame === pageB.mainFrame()) navigations += 1;
      });

      // Created in tab A...
      page = pageA;
      await byTestId('new-task-title').fill(liveTask);
      await byTestId('new-task-submit').click();
      await visible(taskItem(liveTask), 'the new task in tab A');
      // ...appears in tab B.
      page = pageB;
      await visible(taskItem(liveTask), 'the task created in tab A, in tab B');
      await expectText(byTestId('tasks-summary'), /^2 tasks$/, 'task count in tab B');

      page = pageA;
      await taskItem(liveTask).getByTestId('task-toggle').check();
      page = pageB;
      await until('tab B shows the task done', async () => (await taskItem(liveTask).getAttribute('data-status')) === 'done');

      page = pageA;
      await taskItem(liveTask).getByTestId('task-delete').click();
      await visible(byTestId('confirm-dialog'), 'confirmation dialog');
      await byTestId('confirm-ok').click();
      await until('task removed in tab A', async () => (await taskItem(liveTask).count()) === 0);
      page = pageB;
      await until('task removed in tab B', async () => (await taskItem(liveTask).count()) === 0);
      await expectText(byTestId('tasks-summary'), /^1 task$/, 'task count in tab B after the delete');
      assert(navigations === 0, `tab B navigated ${navigations} time(s): the changes must arrive without a reload`);
      await screenshot('live-second-tab');
    } finally {
      page = pageA;
      await pageB.close();
    }
  });

  await step('edit the task in the dialog', async () => {
    await taskItem(firstTask).getByTestId('task-edit').click();
    const dialog = byTestId('edit-dialog');
    await visible(dialog, 'edit dialog');
    assert((await byTestId('edit-title').inputValue()) === firstTask, 'edit dialog not filled with the title');
    assert((await byTestId('edit-priority').inputValue()) === 'high', 'edit dialog not filled with the priority');
    // A blank title is rejected by the API and shown in the dialog.
    await byTestId('edit-title').fill('');
    await byTestId('edit-save').click();
    await visible(byTestId('edit-title-error'), 'title error in the dialog');
    await byTestId('edit-title').fill(editedTask);
    await byTestId('edit-status').selectOption('in_progress');
    await byTestId('edit-priority').selectOption('medium');
    await screenshot('edit-dialog');
    await byTestId('edit-save').click();
    await hidden(dialog, 'edit dialog');
    const item = taskItem(editedTask);
    await visible(item, 'the edited task');
    await until('status in_progress', async () => (await item.getAttribute('data-status')) === 'in_progress');
    assert((await item.getAttribute('data-priority')) === 'medium', 'priority not updated');
    await visible(item.getByTestId('task-status'), 'in-progress badge');
  }, { allow: [422] });

  await step('mark the task as done', async () => {
    const item = taskItem(editedTask);
    await item.getByTestId('task-toggle').check();
    await until('status done', async () => (await taskItem(editedTask).getAttribute('data-status')) === 'done');
    assert(await taskItem(editedTask).getByTestId('task-toggle').isChecked(), 'checkbox is not checked');
    assert(
      await taskItem(editedTask).evaluate((li) => li.classList.contains('is-done')),
      'done task is not styled as done',
    );
    await screenshot('task-done');
  });

  await step('saving over a concurrent change is refused (If-Match) and the latest version shown', async () => {
    const item = taskItem(editedTask);
    const id = await item.getAttribute('data-task-id');
    assert(id, 'task item has no data-task-id');
    await item.getByTestId('task-edit').click();
    await visible(byTestId('edit-dialog'), 'edit dialog');
    // Someone else changes the task while the dialog is open.
    await patchTaskViaApi(id, { description: 'Changed in another tab' });
    await byTestId('edit-priority').selectOption('low');
    await byTestId('edit-save').click();
    await visible(byTestId('edit-error'), 'conflict message');
    await expectText(byTestId('edit-error'), /changed elsewhere/i, 'conflict message');
    await until('latest description in the dialog', async () =>
      (await byTestId('edit-description').inputValue()) === 'Changed in another tab');
    await screenshot('edit-conflict');
    await byTestId('edit-cancel').click();
    await hidden(byTestId('edit-dialog'), 'edit dialog');
    await expectText(taskItem(editedTask).getByTestId('task-description'), 'Changed in another tab', 'description in the list');
    assert((await taskItem(editedTask).getAttribute('data-priority')) === 'medium', 'stale edit was applied');
  }, { allow: [412] });

  await step('filter, search, sort and page through tasks', async () => {
    const extra = [];
    for (let i = 1; i <= 11; i += 1) {
      extra.push({
        title: `Backlog item ${String(i).padStart(2, '0')}`,
        priority: i % 3 === 0 ? 'low' : 'medium',
        ...(i === 7 ? { description: 'Contains the word zebracorn' } : {}),
      });
    }
    for (const task of extra) await createTaskViaApi(task);

    await selectOption('page-size', '5');
    await expectText(byTestId('pager-info'), /^1–5 of 12$/, 'pager on page 1');
    assert(await byTestId('pager-prev').isDisabled(), 'Previous is enabled on page 1');
    await expectText(byTestId('tasks-summary'), /^12 tasks$/, 'task count');
    await byTestId('pager-next').click();
    await expectText(byTestId('pager-info'), /^6–10 of 12$/, 'pager on page 2');
    await byTestId('pager-next').click();
    await expectText(byTestId('pager-info'), /^11–12 of 12$/, 'pager on page 3');
    assert(await byTestId('pager-next').isDisabled(), 'Next is enabled on the last page');
    assert((await byTestId('task-item').count()) === 2, 'last page does not show 2 tasks');
    await byTestId('pager-prev').click();
    await expectText(byTestId('pager-info'), /^6–10 of 12$/, 'pager back on page 2');

    await selectOption('filter-status', 'done');
    await expectText(byTestId('pager-info'), /^1–1 of 1$/, 'pager with status=done');
    await visible(taskItem(editedTask), 'the done task');

    await selectOption('filter-status', '');
    await selectOption('filter-priority', 'low');
    await expectText(byTestId('tasks-summary'), /^3 matching tasks$/, 'low-priority count');
    await screenshot('filtered-low-priority');

    await selectOption('filter-priority', '');
    await byTestId('filter-q').fill('zebracorn');
    await expectText(byTestId('tasks-summary'), /^1 matching task$/, 'search count');
    await visible(taskItem('Backlog item 07'), 'search hit');

    await byTestId('filter-q').fill('');
    await expectText(byTestId('tasks-summary'), /^12 tasks$/, 'unfiltered count');
    await selectOption('sort-select', 'title');
    await until('tasks sorted by title', async () => {
      const titles = await byTestId('task-title').allInnerTexts();
      return titles[0] === 'Backlog item 01' && titles[1] === 'Backlog item 02';
    });
    await selectOption('sort-select', '-title');
    await until('tasks sorted by title descending', async () => {
      const titles = await byTestId('task-title').allInnerTexts();
      return titles[0] === editedTask;
    });
    await selectOption('sort-select', '-created_at');
    await selectOption('page-size', '20');
    await expectText(byTestId('pager-info'), /^1–12 of 12$/, 'pager with 20 per page');
    await screenshot('task-list');
  });

  await step('delete the task after confirming', async () => {
    await taskItem(editedTask).getByTestId('task-delete').click();
    const dialog = byTestId('confirm-dialog');
    await visible(dialog, 'confirmation dialog');
    await screenshot('confirm-delete');
    await byTestId('confirm-cancel').click();
    await hidden(dialog, 'confirmation dialog');
    await visible(taskItem(editedTask), 'the task after cancelling');

    await taskItem(editedTask).getByTestId('task-delete').click();
    await visible(dialog, 'confirmation dialog');
    await byTestId('confirm-ok').click();
    await hidden(dialog, 'confirmation dialog');
    await until('task removed', async () => (await taskItem(editedTask).count()) === 0);
    await expectText(byTestId('tasks-summary'), /^11 tasks$/, 'task count after delete');
  });

  await step('an invalid access token is refreshed (or the user is signed out)', async () => {
    const before = await storage();
    await page.evaluate(() => sessionStorage.setItem('taskapi.access_token', 'not-a-valid-token'));
    await selectOption('filter-status', 'todo');
    if (before.refresh) {
      await expectText(byTestId('tasks-summary'), /^11 matching tasks$/, 'task count after refresh');
      const after = await storage();
      assert(after.access && after.access !== 'not-a-valid-token', 'access token was not replaced');
      assert(after.refresh && after.refresh !== before.refresh, 'refresh token was not rotated');
      await visible(byTestId('tasks-view'), 'task view');
    } else {
      log('    (login returned no refresh_token: expecting sign-out)');
      await visible(byTestId('auth-view'), 'sign-in view after the token was rejected');
      await login(ADMIN);
    }
    await selectOption('filter-status', '');
  }, { allow: [401] });

  await step('mobile and dark layouts render', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await visible(byTestId('tasks-view'), 'task view');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert(overflow <= 0, `page is ${overflow}px wider than a 390px phone screen`);
    await screenshot('mobile-tasks');
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.emulateMedia({ colorScheme: 'dark' });
    await screenshot('dark-tasks');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  await step('a too-short password shows the API validation error next to the input', async () => {
    await logout();
    await register({ ...USER, password: 'short' });
    const error = byTestId('register-password-error');
    await visible(error, 'password error');
    await expectText(error, /\S/, 'password error');
    assert(
      (await byTestId('register-password').getAttribute('aria-invalid')) === 'true',
      'password input is not marked aria-invalid',
    );
    await hidden(byTestId('tasks-view'), 'task view');
    await screenshot('password-too-short');
  }, { allow: [422] });

  await step('second user registers and cannot see the admin view', async () => {
    await byTestId('register-password').fill(USER.password);
    await byTestId('register-submit').click();
    await visible(byTestId('tasks-view'), 'task view');
    await expectText(byTestId('current-user-name'), USER.name, 'user name in the header');
    await expectText(byTestId('current-user-role'), /^user$/i, 'role badge');
    await hidden(byTestId('nav-admin'), 'Users tab');
    await hidden(byTestId('admin-view'), 'Users view');
    await visible(byTestId('tasks-empty'), 'empty list (tasks are per user)');
    // Deep-linking to the admin view does not reveal it.
    await page.goto(`${BASE_URL}/#admin`);
    await page.reload();
    await waitReady();
    await visible(byTestId('tasks-view'), 'task view after reload');
    await hidden(byTestId('admin-view'), 'Users view after reload');
    await hidden(byTestId('nav-admin'), 'Users tab after reload');
    // The API refuses too.
    const status = await page.evaluate(async () => {
      const token = sessionStorage.getItem('taskapi.access_token');
      const response = await fetch('/api/v1/admin/users', { headers: { Authorization: `Bearer ${token}` } });
      return response.status;
    });
    assert(status === 403, `GET /api/v1/admin/users as a user returned ${status}, expected 403`);
    await screenshot('user-no-admin');
  }, { allow: [403] });

  await step('admin changes the second user\'s role and deletes them', async () => {
    await logout();
    await login(ADMIN);
    await byTestId('nav-admin').click();
    await visible(byTestId('admin-view'), 'Users view');
    const row = userRow(USER.email);
    await visible(row, `user row for ${USER.email}`);
    await expectText(byTestId('users-summary'), /2 accounts/, 'users summary');
    await expectText(row.getByTestId('user-role'), /^user$/i, 'role badge');
    await row.getByTestId('user-role-toggle').click();
    await expectText(userRow(USER.email).getByTestId('user-role'), /^admin$/i, 'role badge after promotion');
    await screenshot('user-promoted');
    await userRow(USER.email).getByTestId('user-role-toggle').click();
    await expectText(userRow(USER.email).getByTestId('user-role'), /^user$/i, 'role badge after demotion');
    await userRow(USER.email).getByTestId('user-active-toggle').click();
    await expectText(userRow(USER.email).getByTestId('user-active'), /^inactive$/i, 'status after deactivation');
    await expectText(userRow(USER.email).getByTestId('user-active-toggle'), /^activate$/i, 'activate button');
    await userRow(USER.email).getByTestId('user-active-toggle').click();
    await expectText(userRow(USER.email).getByTestId('user-active'), /^active$/i, 'status after reactivation');

    await userRow(USER.email).getByTestId('user-delete').click();
    await visible(byTestId('confirm-dialog'), 'confirmation dialog');
    await byTestId('confirm-ok').click();
    await until('user row removed', async () => (await userRow(USER.email).count()) === 0);
    await expectText(byTestId('users-summary'), /1 account/, 'users summary after delete');
    await screenshot('user-deleted');
  });

  // --- a project shared by two users (A = ADMIN, B = MEMBER), each in a tab of their own ---
  const project = 'Launch plan';
  const draft = 'Draft the launch email';
  const draftEdited = 'Draft and send the launch email';
  const venue = 'Book the venue';
  const banners = 'Order the banners';
  const bannersEdited = 'Order the banners and posters';
  const handouts = 'Print handouts';
  const pageA = page;
  let pageB = null;
  let projectId = null;
  let navigationsB = 0;
  const as = async (which, fn) => {
    page = which === 'A' ? pageA : pageB;
    try {
      return await fn();
    } finally {
      page = pageA;
    }
  };
  const shareDialogRole = async (email, role) => {
    await byTestId('project-share').click();
    await visible(byTestId('share-dialog'), 'share dialog');
    await visible(memberItem(email), `member row of ${email}`);
    await memberItem(email).getByTestId('member-role-select').selectOption(role);
    await until(`${email} shown as ${role}`, async () => (await memberItem(email).getAttribute('data-role')) === role);
    await byTestId('share-close').click();
    await hidden(byTestId('share-dialog'), 'share dialog');
  };

  await step('a user creates a project in the sidebar and adds a task to it', async () => {
    await byTestId('nav-tasks').click();
    await visible(byTestId('tasks-view'), 'task view');
    await expectText(byTestId('project-item').first(), 'Inbox', 'first project in the sidebar');
    await byTestId('new-project-name').fill(project);
    await byTestId('new-project-color').selectOption('#0d9488');
    await byTestId('new-project-submit').click();
    await visible(projectItem(project), 'the new project in the sidebar');
    await until('the new project is selected', async () =>
      (await projectItem(project).getAttribute('aria-current')) === 'page');
    await expectText(byTestId('project-heading'), project, 'heading');
    await expectText(byTestId('project-role'), /^admin$/i, 'role badge');
    await expectText(byTestId('project-share'), /^share$/i, 'Share button');
    await expectText(byTestId('tasks-summary'), /^0 tasks$/, 'task count of the new project');
    projectId = await projectItem(project).getAttribute('data-project-id');
    assert(projectId, 'project item has no data-project-id');

    await byTestId('new-task-title').fill(draft);
    await byTestId('new-task-submit').click();
    await visible(taskItem(draft), 'the task in the project');
    await expectText(byTestId('tasks-summary'), /^1 task$/, 'task count of the project');
    const inbox = await apiFetch('GET', `/api/v1/tasks?q=${encodeURIComponent(draft)}`);
    assert(inbox.status === 200 && inbox.body.total === 0, `the project's task is listed in the Inbox: ${JSON.stringify(inbox.body)}`);
    const listed = await apiFetch('GET', `/api/v1/projects/${projectId}/tasks`);
    assert(listed.body.items?.[0]?.project_id === projectId, `task not created in the project: ${JSON.stringify(listed.body)}`);

    // The Inbox and the project each show their own tasks.
    await projectItem('Inbox').click();
    await expectText(byTestId('project-heading'), 'Inbox', 'heading of the Inbox');
    await visible(taskItem('Backlog item 01'), 'an Inbox task');
    assert((await taskItem(draft).count()) === 0, 'the project task is shown in the Inbox');
    await hidden(byTestId('project-share'), 'Share button in the Inbox');
    await projectItem(project).click();
    await visible(taskItem(draft), 'the task after going back to the project');
    assert((await taskItem('Backlog item 01').count()) === 0, 'an Inbox task is shown in the project');
    await screenshot('project-created');
  });

  await step('the project admin shares the project with a second user as a viewer', async () => {
    pageB = await context.newPage();
    await attachMonitors(pageB);
    await as('B', async () => {
      await pageB.goto(BASE_URL);
      await waitReady();
      await register(MEMBER);
      await visible(byTestId('tasks-view'), 'task view of the second user');
      await expectText(byTestId('project-list'), 'Inbox', 'sidebar of the second user');
      assert((await byTestId('project-item').count()) === 1, 'the second user has more than their Inbox');
      pageB.on('framenavigated', (frame) => {
        if (frame === pageB.mainFrame()) navigationsB += 1;
      });
    });

    await byTestId('project-share').click();
    const dialog = byTestId('share-dialog');
    await visible(dialog, 'share dialog');
    await visible(memberItem(ADMIN.email), 'the admin in the member list');
    assert(
      (await memberItem(ADMIN.email).getByTestId('member-role-select').inputValue()) === 'admin',
      'the project creator is not its admin',
    );
    // An address without an account: the API names the email field (422), and its reason
    // is shown next to the input.
    await byTestId('member-email').fill(`nobody.${RUN_ID}@example.com`);
    await byTestId('member-add-submit').click();
    await expectText(byTestId('member-email-error'), /account/, 'error for an unknown address');

    await byTestId('member-email').fill(MEMBER.email);
    await byTestId('member-role').selectOption('viewer');
    await byTestId('member-add-submit').click();
    await visible(memberItem(MEMBER.email), 'the new member in the list');
    assert((await memberItem(MEMBER.email).getAttribute('data-role')) === 'viewer', 'the new member is not a viewer');
    await expectText(byTestId('member-email-error'), /^$/, 'stale error next to the address');
    await screenshot('share-dialog');
    await byTestId('share-close').click();
    await hidden(dialog, 'share dialog');
  }, { allow: [422] });

  await step('the viewer sees the project and its changes live, with no edit controls', async () => {
    // A task created by A makes the project appear in B's sidebar, no reload.
    await byTestId('new-task-title').fill(venue);
    await byTestId('new-task-submit').click();
    await visible(taskItem(venue), 'the new task in tab A');
    await as('B', async () => {
      await visible(projectItem(project), 'the shared project in the second user\'s sidebar');
      await expectText(projectItem(project).getByTestId('project-item-badge'), /^viewer$/i, 'role in the sidebar');
      await projectItem(project).click();
      await visible(taskItem(venue), 'the task created by A');
      await visible(taskItem(draft), 'the older task');
      await expectText(byTestId('project-role'), /^viewer$/i, 'role badge');
      await visible(byTestId('readonly-notice'), 'read-only notice');
      await hidden(byTestId('task-create-form'), 'new-task form');
      await expectText(byTestId('project-share'), /^members$/i, 'Members button');
      assert((await byTestId('task-edit').count()) === 0, 'a viewer sees Edit buttons');
      assert((await byTestId('task-delete').count()) === 0, 'a viewer sees Delete buttons');
      assert(await taskItem(venue).getByTestId('task-toggle').isDisabled(), 'a viewer can tick a task');
    });

    await taskItem(venue).getByTestId('task-toggle').check();
    await as('B', () => until('B shows the task done', async () => (await taskItem(venue).getAttribute('data-status')) === 'done'));

    await taskItem(draft).getByTestId('task-edit').click();
    await visible(byTestId('edit-dialog'), 'edit dialog');
    await byTestId('edit-title').fill(draftEdited);
    await byTestId('edit-save').click();
    await hidden(byTestId('edit-dialog'), 'edit dialog');
    await as('B', () => visible(taskItem(draftEdited), 'the title edited by A'));

    await byTestId('new-task-title').fill(banners);
    await byTestId('new-task-submit').click();
    await as('B', async () => {
      await visible(taskItem(banners), 'the third task, in tab B');
      await expectText(byTestId('tasks-summary'), /^3 tasks$/, 'task count in tab B');
      assert((await byTestId('task-edit').count()) === 0, 'a viewer sees Edit buttons');
      assert(navigationsB === 0, `tab B navigated ${navigationsB} time(s): the changes must arrive without a reload`);
      await screenshot('viewer-live');
    });
  });

  await step('the API refuses the viewer\'s writes with 403 problem documents', async () => {
    await as('B', async () => {
      const id = await taskItem(banners).getAttribute('data-task-id');
      assert(id, 'task item has no data-task-id');
      const patch = await apiFetch('PATCH', `/api/v1/tasks/${id}`, { title: 'Not allowed' });
      assert(patch.status === 403, `PATCH by a viewer returned ${patch.status}: ${JSON.stringify(patch.body)}`);
      assert(patch.type.includes('application/problem+json'), `403 served as ${patch.type}`);
      assert(patch.body?.status === 403 && typeof patch.body?.detail === 'string', `403 body: ${JSON.stringify(patch.body)}`);
      const remove = await apiFetch('DELETE', `/api/v1/tasks/${id}`);
      assert(remove.status === 403, `DELETE by a viewer returned ${remove.status}`);
      const create = await apiFetch('POST', '/api/v1/tasks', { title: 'Not allowed', project_id: projectId });
      assert(create.status === 403, `POST into the project by a viewer returned ${create.status}`);
      const share = await apiFetch('POST', `/api/v1/projects/${projectId}/members`, { email: USER.email, role: 'admin' });
      assert(share.status === 403, `sharing by a viewer returned ${share.status}`);
      const after = await apiFetch('GET', `/api/v1/tasks/${id}`);
      assert(after.status === 200 && after.body.title === banners, `the refused PATCH changed the task: ${JSON.stringify(after.body)}`);
    });
  }, { allow: [403] });

  await step('the admin creates a label and gives a task the label and two assignees; both tabs show the chips', async () => {
    const label = 'Urgent';
    await byTestId('project-labels').click();
    await visible(byTestId('labels-dialog'), 'labels dialog');
    await visible(byTestId('label-create-form'), 'new-label form of a project admin');
    await byTestId('new-label-name').fill(label);
    await byTestId('new-label-color').fill('#e11d48');
    await byTestId('new-label-submit').click();
    await visible(labelRow(label), 'the new label in the dialog');
    // A second label of the same name (ignoring case) is a 409, shown in the dialog.
    await byTestId('new-label-name').fill(label.toUpperCase());
    await byTestId('new-label-submit').click();
    await expectText(byTestId('new-label-error'), /label/i, 'error for a duplicate label');
    await byTestId('new-label-name').fill('');
    await screenshot('labels-dialog');
    await byTestId('labels-close').click();
    await hidden(byTestId('labels-dialog'), 'labels dialog');
    await as('B', async () => {
      await byTestId('project-labels').click();
      await visible(labelRow(label), 'the label, in the viewer\'s labels dialog');
      await hidden(byTestId('label-create-form'), 'new-label form for a viewer');
      assert((await byTestId('label-delete').count()) === 0, 'a viewer sees Delete buttons for labels');
      await byTestId('labels-close').click();
      await hidden(byTestId('labels-dialog'), 'labels dialog');
    });

    await taskItem(venue).getByTestId('task-edit').click();
    await visible(byTestId('edit-dialog'), 'edit dialog');
    await pickerOption('edit-label-option', 'name', label).check();
    await pickerOption('edit-assignee-option', 'email', ADMIN.email).check();
    await pickerOption('edit-assignee-option', 'email', MEMBER.email).check();
    await screenshot('edit-labels-assignees');
    await byTestId('edit-save').click();
    await hidden(byTestId('edit-dialog'), 'edit dialog');
    await expectText(taskItem(venue).getByTestId('task-label-chip'), label, 'label chip');
    await until('the chip has the label colour', async () =>
      (await taskItem(venue).getByTestId('task-label-chip').evaluate((c) => getComputedStyle(c).backgroundColor)) === 'rgb(225, 29, 72)');
    await until('two assignee chips', async () => (await taskItem(venue).getByTestId('task-assignee-chip').count()) === 2);
    await expectText(taskItem(venue).getByTestId('task-chips'), ADMIN.name, 'assignee chip of the admin');
    await expectText(taskItem(venue).getByTestId('task-chips'), MEMBER.name, 'assignee chip of the member');
    await as('B', async () => {
      await expectText(taskItem(venue).getByTestId('task-label-chip'), label, 'label chip in tab B');
      await until('two assignee chips in tab B', async () => (await taskItem(venue).getByTestId('task-assignee-chip').count()) === 2);
      assert(navigationsB === 0, `tab B navigated ${navigationsB} time(s)`);
    });

    // An id that is not a member is a 422 naming the field.
    const id = await taskItem(venue).getAttribute('data-task-id');
    const bad = await apiFetch('PATCH', `/api/v1/tasks/${id}`, { assignee_ids: [projectId] });
    assert(bad.status === 422 && bad.body?.errors?.[0]?.field === 'assignee_ids', `PATCH with a non-member: ${bad.status} ${JSON.stringify(bad.body)}`);

    // Renaming and recolouring the label reaches the other tab too.
    await byTestId('project-labels').click();
    await visible(labelRow(label), 'the label in the dialog');
    await labelRow(label).getByTestId('label-name-input').fill('Urgent!');
    await labelRow(label).getByTestId('label-color-input').fill('#16a34a');
    await labelRow(label).getByTestId('label-save').click();
    await visible(labelRow('Urgent!'), 'the renamed label');
    await byTestId('labels-close').click();
    await hidden(byTestId('labels-dialog'), 'labels dialog');
    await expectText(taskItem(venue).getByTestId('task-label-chip'), 'Urgent!', 'renamed label chip');
    await as('B', async () => {
      await expectText(taskItem(venue).getByTestId('task-label-chip'), 'Urgent!', 'renamed label chip in tab B');
      await until('the recoloured chip in tab B', async () =>
        (await taskItem(venue).getByTestId('task-label-chip').evaluate((c) => getComputedStyle(c).backgroundColor)) === 'rgb(22, 163, 74)');
      await screenshot('viewer-chips');
    });
  }, { allow: [409, 422] });

  await step('the task list filters by label and by assignee', async () => {
    await byTestId('filter-labels-toggle').click();
    await pickerOption('filter-label-option', 'name', 'Urgent!').check();
    await expectText(byTestId('tasks-summary'), /^1 matching task$/, 'count with the label filter');
    await visible(taskItem(venue), 'the labelled task');
    await expectText(byTestId('filter-labels-toggle'), 'Urgent!', 'label filter summary');
    await screenshot('filter-label');
    await pickerOption('filter-label-option', 'name', 'Urgent!').uncheck();
    await byTestId('filter-labels-toggle').click();
    await expectText(byTestId('tasks-summary'), /^3 tasks$/, 'count without filters');

    await selectOption('filter-assignee', 'me');
    await expectText(byTestId('tasks-summary'), /^1 matching task$/, 'count with assignee=me');
    await visible(taskItem(venue), 'the task assigned to me');
    await selectOption('filter-assignee', 'none');
    await expectText(byTestId('tasks-summary'), /^2 matching tasks$/, 'count with assignee=none');
    assert((await taskItem(venue).count()) === 0, 'an assigned task is listed under "Nobody"');
    await as('B', async () => {
      await selectOption('filter-assignee', 'me');
      await expectText(byTestId('tasks-summary'), /^1 matching task$/, 'count with assignee=me in tab B');
      await visible(taskItem(venue), 'the task assigned to the viewer');
      await selectOption('filter-assignee', '');
      await expectText(byTestId('tasks-summary'), /^3 tasks$/, 'count without filters in tab B');
    });
    await selectOption('filter-assignee', '');
    await expectText(byTestId('tasks-summary'), /^3 tasks$/, 'count without filters');
  });

  await step('a comment appears live in the other user\'s thread and count; the viewer cannot comment', async () => {
    await as('B', async () => {
      await expectText(taskItem(venue).getByTestId('task-comment-count'), /^0$/, 'comment count in tab B');
      await taskItem(venue).getByTestId('task-comments').click();
      await visible(byTestId('comments-dialog'), 'comments dialog of the viewer');
      await expectText(byTestId('comments-summary'), /no comments/i, 'empty thread');
      await hidden(byTestId('comment-form'), 'comment box for a viewer');
    });
    await taskItem(venue).getByTestId('task-comments').click();
    await visible(byTestId('comments-dialog'), 'comments dialog');
    await visible(byTestId('comment-form'), 'comment box of the admin');
    // A blank comment is refused with the API's field error.
    await byTestId('comment-body').fill('   ');
    await byTestId('comment-submit').click();
    await expectText(byTestId('comment-body-error'), /\S/, 'error for a blank comment');
    const text = 'Venue confirmed for <b>Friday</b>';
    await byTestId('comment-body').fill(text);
    await byTestId('comment-submit').click();
    await visible(byTestId('comment-item').filter({ hasText: text }), 'the comment in the thread');
    await expectText(byTestId('comments-summary'), /^1 comment$/, 'thread summary');
    await visible(byTestId('comment-edit'), 'Edit on one\'s own comment');
    await screenshot('comments-thread');

    await as('B', async () => {
      const item = byTestId('comment-item').filter({ hasText: text });
      await visible(item, 'the comment, live in the viewer\'s open thread');
      // Untrusted text is shown as text, never as markup.
      assert((await item.locator('b').count()) === 0, 'the comment body was injected as HTML');
      await expectText(item.getByTestId('comment-author'), ADMIN.name, 'comment author');
      await expectText(taskItem(venue).getByTestId('task-comment-count'), /^1$/, 'comment count in tab B');
      assert((await byTestId('comment-edit').count()) === 0, 'a viewer sees Edit on comments');
      assert((await byTestId('comment-delete').count()) === 0, 'a viewer sees Delete on comments');
      await hidden(byTestId('comment-form'), 'comment box for a viewer');
      assert((await byTestId('task-edit').count()) === 0, 'a viewer sees Edit buttons');
      assert((await byTestId('task-delete').count()) === 0, 'a viewer sees Delete buttons');
      await screenshot('viewer-comments');
    });

    // Editing one's own comment updates the other thread too.
    await byTestId('comment-edit').click();
    await byTestId('comment-edit-body').fill(`${text} at 10:00`);
    await byTestId('comment-edit-save').click();
    await visible(byTestId('comment-item').filter({ hasText: 'at 10:00' }), 'the edited comment');
    await visible(byTestId('comment-edited'), 'the edited marker');
    await as('B', () => visible(byTestId('comment-item').filter({ hasText: 'at 10:00' }), 'the edited comment in tab B'));
    await byTestId('comments-close').click();
    await hidden(byTestId('comments-dialog'), 'comments dialog');
    await expectText(taskItem(venue).getByTestId('task-comment-count'), /^1$/, 'comment count in tab A');
    await as('B', async () => {
      await byTestId('comments-close').click();
      await hidden(byTestId('comments-dialog'), 'comments dialog in tab B');
      assert(navigationsB === 0, `tab B navigated ${navigationsB} time(s)`);
    });
  }, { allow: [422] });

  await step('promoted to editor, the second user can add and edit tasks', async () => {
    await shareDialogRole(MEMBER.email, 'editor');
    await as('B', async () => {
      // The page does not redraw its own role on `member.updated` (yet): coming back to the project reloads it.
      await projectItem(project).click();
      await expectText(byTestId('project-role'), /^editor$/i, 'role badge after the promotion');
      await visible(byTestId('task-create-form'), 'new-task form');
      await hidden(byTestId('readonly-notice'), 'read-only notice');
      await visible(taskItem(banners).getByTestId('task-edit'), 'Edit button');
      await taskItem(banners).getByTestId('task-edit').click();
      await visible(byTestId('edit-dialog'), 'edit dialog');
      await byTestId('edit-title').fill(bannersEdited);
      await byTestId('edit-save').click();
      await hidden(byTestId('edit-dialog'), 'edit dialog');
      await visible(taskItem(bannersEdited), 'the task edited by the editor');
      await byTestId('new-task-title').fill(handouts);
      await byTestId('new-task-submit').click();
      await visible(taskItem(handouts), 'the task created by the editor');
      await screenshot('editor');
    });
    await visible(taskItem(bannersEdited), 'the editor\'s change, live in tab A');
    await visible(taskItem(handouts), 'the editor\'s new task, live in tab A');
  });

  await step('an editor comments; the project admin may delete it but not edit it; labels can be deleted', async () => {
    const text = 'Second venue as a fallback?';
    await as('B', async () => {
      await taskItem(venue).getByTestId('task-comments').click();
      await visible(byTestId('comments-dialog'), 'comments dialog of the editor');
      await visible(byTestId('comment-form'), 'comment box of an editor');
      await visible(byTestId('comment-item').first(), 'the admin\'s comment');
      assert((await byTestId('comment-edit').count()) === 0, 'an editor may edit someone else\'s comment');
      assert((await byTestId('comment-delete').count()) === 0, 'an editor may delete someone else\'s comment');
      await byTestId('comment-body').fill(text);
      await byTestId('comment-submit').click();
      await visible(byTestId('comment-item').filter({ hasText: text }), 'the editor\'s comment');
      await expectText(taskItem(venue).getByTestId('task-comment-count'), /^2$/, 'comment count in tab B');
    });
    await expectText(taskItem(venue).getByTestId('task-comment-count'), /^2$/, 'comment count in tab A');
    await taskItem(venue).getByTestId('task-comments').click();
    await visible(byTestId('comments-dialog'), 'comments dialog');
    const theirs = byTestId('comment-item').filter({ hasText: text });
    await visible(theirs, 'the editor\'s comment in tab A');
    assert((await theirs.getByTestId('comment-edit').count()) === 0, 'the admin may edit someone else\'s comment');
    await theirs.getByTestId('comment-delete').click();
    await visible(byTestId('confirm-dialog'), 'confirmation dialog');
    await byTestId('confirm-ok').click();
    await until('the comment removed', async () => (await theirs.count()) === 0);
    await byTestId('comments-close').click();
    await hidden(byTestId('comments-dialog'), 'comments dialog');
    await expectText(taskItem(venue).getByTestId('task-comment-count'), /^1$/, 'comment count after the delete');
    await as('B', async () => {
      await until('the comment removed in tab B', async () => (await byTestId('comment-item').filter({ hasText: text }).count()) === 0);
      await expectText(taskItem(venue).getByTestId('task-comment-count'), /^1$/, 'comment count in tab B after the delete');
      await byTestId('comments-close').click();
      await hidden(byTestId('comments-dialog'), 'comments dialog in tab B');
    });

    await byTestId('project-labels').click();
    await byTestId('new-label-name').fill('Temporary');
    await byTestId('new-label-submit').click();
    await visible(labelRow('Temporary'), 'the second label');
    await labelRow('Temporary').getByTestId('label-delete').click();
    await visible(byTestId('confirm-dialog'), 'confirmation dialog');
    await byTestId('confirm-ok').click();
    await until('the label removed', async () => (await labelRow('Temporary').count()) === 0);
    await visible(labelRow('Urgent!'), 'the other label');
    await byTestId('labels-close').click();
    await hidden(byTestId('labels-dialog'), 'labels dialog');
  });

  await step('demoted while showing edit controls, a refused write shows the reason and hides them', async () => {
    await shareDialogRole(MEMBER.email, 'viewer');
    await as('B', async () => {
      await visible(taskItem(handouts).getByTestId('task-edit'), 'the stale Edit button');
      // click(), not check(): the page unticks the box again when the write is refused.
      await taskItem(handouts).getByTestId('task-toggle').click();
      const alert = page.locator('[data-testid="toast"][role="alert"]');
      await visible(alert, 'error toast');
      await expectText(alert.last(), /\S/, 'error toast');
      await until('edit controls hidden', async () => (await byTestId('task-edit').count()) === 0);
      await hidden(byTestId('task-create-form'), 'new-task form');
      await expectText(byTestId('project-role'), /^viewer$/i, 'role badge after the demotion');
      await until('the refused tick undone', async () =>
        (await taskItem(handouts).getAttribute('data-status')) === 'todo' &&
        !(await taskItem(handouts).getByTestId('task-toggle').isChecked()));
      await screenshot('viewer-refused');
    });
  }, { allow: [403] });

  await step('the second user leaves the project', async () => {
    try {
      await as('B', async () => {
        await byTestId('project-share').click();
        await visible(byTestId('share-dialog'), 'members dialog');
        await hidden(byTestId('member-add-form'), 'add-member form for a viewer');
        await byTestId('member-leave').click();
        await visible(byTestId('confirm-dialog'), 'confirmation dialog');
        await byTestId('confirm-ok').click();
        await hidden(byTestId('share-dialog'), 'members dialog');
        await until('project gone from the sidebar', async () => (await projectItem(project).count()) === 0);
        await expectText(byTestId('project-heading'), 'Inbox', 'heading after leaving');
      });
      await byTestId('project-share').click();
      await visible(memberItem(ADMIN.email), 'the admin in the member list');
      assert((await memberItem(MEMBER.email).count()) === 0, 'the member who left is still listed');
      await byTestId('share-close').click();
      await hidden(byTestId('share-dialog'), 'share dialog');
    } finally {
      page = pageA;
      await pageB?.close();
    }
  });

  await step('a task created with a label and an assignee shows their chips', async () => {
    const title = 'Hire a photographer';
    await byTestId('new-task-title').fill(title);
    await byTestId('new-task-assignees-toggle').click();
    await pickerOption('new-task-assignee-option', 'email', ADMIN.email).check();
    await byTestId('new-task-assignees-toggle').click();
    await byTestId('new-task-labels-toggle').click();
    await pickerOption('new-task-label-option', 'name', 'Urgent!').check();
    await byTestId('new-task-labels-toggle').click();
    await expectText(byTestId('new-task-labels-toggle'), 'Urgent!', 'label choice of the new task');
    await byTestId('new-task-submit').click();
    await visible(taskItem(title), 'the new task');
    await expectText(taskItem(title).getByTestId('task-label-chip'), 'Urgent!', 'label chip of the new task');
    await expectText(taskItem(title).getByTestId('task-assignee-chip'), ADMIN.name, 'assignee chip of the new task');
    await expectText(byTestId('new-task-labels-toggle'), /^None$/, 'label choice reset after adding');
    await taskItem(title).getByTestId('task-delete').click();
    await visible(byTestId('confirm-dialog'), 'confirmation dialog');
    await byTestId('confirm-ok').click();
    await until('the task removed', async () => (await taskItem(title).count()) === 0);
  });

  await step('moving a task to the Inbox drops the labels the Inbox lacks, with a notice', async () => {
    await visible(taskItem(venue), 'the labelled task');
    await taskItem(venue).getByTestId('task-edit').click();
    await visible(byTestId('edit-dialog'), 'edit dialog');
    await byTestId('edit-project').selectOption({ label: 'Inbox' });
    await visible(byTestId('edit-project-hint'), 'the note about moving');
    await byTestId('edit-save').click();
    await hidden(byTestId('edit-dialog'), 'edit dialog');
    await until('the task left the project', async () => (await taskItem(venue).count()) === 0);
    await expectText(byTestId('toasts'), /Moved .*Inbox.*Labels dropped.*“Urgent!”/s, 'move notice');
    await projectItem('Inbox').click();
    await visible(taskItem(venue), 'the moved task in the Inbox');
    assert((await taskItem(venue).getByTestId('task-label-chip').count()) === 0, 'the moved task kept a label');
    await expectText(taskItem(venue).getByTestId('task-comment-count'), /^1$/, 'comment count after the move');
    await screenshot('task-moved');
    await projectItem(project).click();
    await expectText(byTestId('project-heading'), project, 'heading');
  });

  await step('no cookies, console errors or CSP violations during the run', async () => {
    const cookies = await context.cookies();
    assert(cookies.length === 0, `unexpected cookies: ${cookies.map((c) => c.name).join(', ')}`);
    assert(monitor.all.length === 0, `problems seen:\n    ${monitor.all.join('\n    ')}`);
  });
}

/* ------------------------------------------------------------------ entry */

let fatal = null;
try {
  await main();
} catch (error) {
  fatal = error;
  log(`fatal: ${error.stack || error}`);
}

if (monitor.cspInjected) {
  log(`warning: the server sent no Content-Security-Policy; the test supplied "${EXPECTED_CSP}"`);
}
const passed = results.filter((r) => r.status === 'passed').length;
const skipped = results.filter((r) => r.status === 'skipped').length;
const failed = results.filter((r) => r.status === 'failed').length + (fatal ? 1 : 0);
if (skipped) log(`${skipped} skipped after the first failure`);
log(`${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
