// HTTP client for the taskapi REST API (/api/v1).
//
// Tokens live in sessionStorage only; the client never sets cookies. On a 401
// the client attempts one refresh (POST /auth/refresh) if it holds a refresh
// token, then repeats the original request once. If that is impossible the
// session is cleared and the registered "session expired" handler runs.

const API_BASE = '/api/v1';

const STORAGE_KEYS = Object.freeze({
  access: 'taskapi.access_token',
  refresh: 'taskapi.refresh_token',
  user: 'taskapi.user',
});

/** Error carrying an RFC 9457 problem document. */
export class ApiError extends Error {
  constructor(status, problem = {}, retryAfter = null) {
    const title = typeof problem.title === 'string' ? problem.title : '';
    const detail = typeof problem.detail === 'string' ? problem.detail : '';
    super(detail || title || `Request failed (HTTP ${status})`);
    this.name = 'ApiError';
    this.status = status;
    this.type = typeof problem.type === 'string' ? problem.type : 'about:blank';
    this.title = title;
    this.detail = detail;
    this.retryAfter = retryAfter;
    this.errors = Array.isArray(problem.errors)
      ? problem.errors
          .filter((e) => e && typeof e === 'object')
          .map((e) => ({
            field: typeof e.field === 'string' ? e.field : '',
            message: typeof e.message === 'string' ? e.message : String(e.message ?? ''),
          }))
      : [];
  }

  /** A single human readable sentence for toasts and form-level messages. */
  get summary() {
    if (this.status === 429) {
      const wait = this.retryAfter ? ` Try again in ${this.retryAfter} s.` : ' Try again shortly.';
      return (this.detail || 'Too many attempts.') + wait;
    }
    if (this.detail) return this.detail;
    if (this.errors.length) return this.errors.map((e) => e.message).join(' ');
    return this.title || this.message;
  }
}

function readJson(key) {
  try {
    const raw = sessionStorage.getItem(key);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

/** Access to the browser-session credentials. */
export const session = {
  get accessToken() {
    return sessionStorage.getItem(STORAGE_KEYS.access);
  },
  get refreshToken() {
    return sessionStorage.getItem(STORAGE_KEYS.refresh);
  },
  get user() {
    return readJson(STORAGE_KEYS.user);
  },
  get isAdmin() {
    return this.user?.role === 'admin';
  },
  /** Store the tokens (and user, when present) from a login/refresh response. */
  saveTokens(payload) {
    if (!payload || typeof payload.access_token !== 'string') {
      throw new ApiError(0, { title: 'Unexpected response', detail: 'The server did not return an access token.' });
    }
    sessionStorage.setItem(STORAGE_KEYS.access, payload.access_token);
    if (typeof payload.refresh_token === 'string' && payload.refresh_token) {
      sessionStorage.setItem(STORAGE_KEYS.refresh, payload.refresh_token);
    } else {
      sessionStorage.removeItem(STORAGE_KEYS.refresh);
    }
    if (payload.user && typeof payload.user === 'object') this.setUser(payload.user);
  },
  setUser(user) {
    sessionStorage.setItem(STORAGE_KEYS.user, JSON.stringify(user));
  },
  clear() {
    for (const key of Object.values(STORAGE_KEYS)) sessionStorage.removeItem(key);
  },
};

let sessionExpiredHandler = () => {};

/** Register a callback run when the session ends involuntarily (expired/revoked). */
export function onSessionExpired(fn) {
  sessionExpiredHandler = typeof fn === 'function' ? fn : () => {};
}

function buildQuery(params = {}) {
  const qs = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    // An array repeats the parameter (`label=a&label=b`).
    if (Array.isArray(value)) {
      for (const v of value) if (v !== undefined && v !== null && v !== '') qs.append(key, String(v));
      continue;
    }
    qs.set(key, String(value));
  }
  const s = qs.toString();
  return s ? `?${s}` : '';
}

async function send(method, path, { body, auth = true, headers = {} } = {}) {
  const h = { Accept: 'application/json, application/problem+json', ...headers };
  const token = auth ? session.accessToken : null;
  if (token) h.Authorization = `Bearer ${token}`;
  const init = { method, headers: h, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API_BASE + path, init);
  } catch {
    throw new ApiError(0, {
      title: 'Network error',
      detail: 'Could not reach the server. Check your connection and try again.',
    });
  }
  return { response, token };
}

async function readBody(response) {
  if (response.status === 204 || response.status === 304) return null;
  const text = await response.text();
  if (!text) return null;
  const type = response.headers.get('content-type') || '';
  if (type.includes('json')) {
    try {
      return JSON.parse(text);
    } catch {
      return null;
    }
  }
  // Not a problem document (e.g. an HTML error page from a proxy): don't show it raw.
  return null;
}

function fallbackProblem(status) {
  if (status >= 500) {
    return { title: 'Server error', detail: `The server could not complete the request (HTTP ${status}). Please try again.` };
  }
  if (status === 404) return { title: 'Not found', detail: 'The requested item was not found.' };
  if (status === 429) return { title: 'Too many requests', detail: 'Too many requests.' };
  return { title: 'Request failed', detail: `The request failed (HTTP ${status}).` };
}

let refreshInFlight = null;

/** Exchange the refresh token for a new token pair. Concurrent callers share one call. */
function refreshSession() {
  if (!session.refreshToken) return Promise.resolve(false);
  if (!refreshInFlight) {
    refreshInFlight = (async () => {
      try {
        const { response } = await send('POST', '/auth/refresh', {
          body: { refresh_token: session.refreshToken },
          auth: false,
        });
        if (!response.ok) return false;
        const data = await readBody(response);
        session.saveTokens(data);
        return true;
      } catch {
        return false;
      }
    })().finally(() => {
      refreshInFlight = null;
    });
  }
  return refreshInFlight;
}

/**
 * Perform a request and return the parsed JSON body (null for 204).
 * Throws ApiError for any non-2xx response.
 */
export async function request(method, path, options = {}) {
  const auth = options.auth !== false;
  let { response, token } = await send(method, path, options);

  if (response.status === 401 && auth && token) {
    let retry = false;
    if (session.accessToken && session.accessToken !== token) {
      // Another request already refreshed the token while this one was in flight.
      retry = true;
    } else {
      retry = await refreshSession();
    }
    if (retry) ({ response } = await send(method, path, options));
    if (response.status === 401) {
      session.clear();
      sessionExpiredHandler();
    }
  }

  const data = await readBody(response);
  if (!response.ok) {
    const problem = data && typeof data === 'object' ? data : fallbackProblem(response.status);
    throw new ApiError(response.status, problem, response.headers.get('retry-after'));
  }
  return data;
}

/**
 * Open a streaming GET (the change feed): like `request`, a 401 is retried once after a
 * refresh, but the response is returned unread. Throws ApiError for any non-2xx response.
 */
export async function openStream(path, { headers = {}, signal } = {}) {
  const open = () => {
    const h = { Accept: 'text/event-stream', ...headers };
    const token = session.accessToken;
    if (token) h.Authorization = `Bearer ${token}`;
    return fetch(API_BASE + path, { headers: h, credentials: 'same-origin', cache: 'no-store', signal })
      .then((response) => ({ response, token }));
  };
  let { response, token } = await open();
  if (response.status === 401 && token) {
    const retry = session.accessToken !== token || (await refreshSession());
    if (retry) ({ response } = await open());
    if (response.status === 401) {
      session.clear();
      sessionExpiredHandler();
    }
  }
  if (!response.ok) {
    const data = await readBody(response);
    const problem = data && typeof data === 'object' ? data : fallbackProblem(response.status);
    throw new ApiError(response.status, problem, response.headers.get('retry-after'));
  }
  return response;
}

const ifMatch = (version) => (version === undefined || version === null ? {} : { 'If-Match': `"${version}"` });

export const authApi = {
  register: ({ name, email, password }) =>
    request('POST', '/auth/register', { body: { name, email, password }, auth: false }),

  async login(email, password) {
    const data = await request('POST', '/auth/login', { body: { email, password }, auth: false });
    session.saveTokens(data);
    return data;
  },

  me: () => request('GET', '/auth/me'),

  /** Revoke the refresh token server-side (best effort) and forget the session locally. */
  async logout() {
    const refreshToken = session.refreshToken;
    try {
      if (refreshToken) {
        await send('POST', '/auth/logout', { body: { refresh_token: refreshToken } });
      }
    } catch {
      // Logging out locally is what matters; the server call is best effort.
    } finally {
      session.clear();
    }
  },
};

export const tasksApi = {
  list: (params) => request('GET', `/tasks${buildQuery(params)}`),
  get: (id) => request('GET', `/tasks/${encodeURIComponent(id)}`),
  create: (task) => request('POST', '/tasks', { body: task }),
  update: (id, changes, version) =>
    request('PATCH', `/tasks/${encodeURIComponent(id)}`, { body: changes, headers: ifMatch(version) }),
  remove: (id, version) =>
    request('DELETE', `/tasks/${encodeURIComponent(id)}`, { headers: ifMatch(version) }),
};

const projectPath = (id) => `/projects/${encodeURIComponent(id)}`;

export const projectsApi = {
  list: () => request('GET', '/projects'),
  get: (id) => request('GET', projectPath(id)),
  create: (project) => request('POST', '/projects', { body: project }),
  update: (id, changes, version) =>
    request('PATCH', projectPath(id), { body: changes, headers: ifMatch(version) }),
  remove: (id, version) => request('DELETE', projectPath(id), { headers: ifMatch(version) }),
  /** A page of the project's tasks: the query and page shape of `tasksApi.list`. */
  tasks: (id, params) => request('GET', `${projectPath(id)}/tasks${buildQuery(params)}`),
  members: (id) => request('GET', `${projectPath(id)}/members`),
  addMember: (id, email, role) => request('POST', `${projectPath(id)}/members`, { body: { email, role } }),
  updateMember: (id, userId, role) =>
    request('PATCH', `${projectPath(id)}/members/${encodeURIComponent(userId)}`, { body: { role } }),
  /** Remove a member (project admins), or leave (any member, with their own id). */
  removeMember: (id, userId) => request('DELETE', `${projectPath(id)}/members/${encodeURIComponent(userId)}`),
  labels: (id) => request('GET', `${projectPath(id)}/labels`),
  createLabel: (id, label) => request('POST', `${projectPath(id)}/labels`, { body: label }),
  updateLabel: (id, labelId, changes, version) =>
    request('PATCH', `${projectPath(id)}/labels/${encodeURIComponent(labelId)}`, { body: changes, headers: ifMatch(version) }),
  removeLabel: (id, labelId) => request('DELETE', `${projectPath(id)}/labels/${encodeURIComponent(labelId)}`),
};

const commentsPath = (taskId) => `/tasks/${encodeURIComponent(taskId)}/comments`;

export const commentsApi = {
  /** A page of a task's comments, oldest first: `{ items, next_cursor }`. */
  list: (taskId, params) => request('GET', `${commentsPath(taskId)}${buildQuery(params)}`),
  create: (taskId, body) => request('POST', commentsPath(taskId), { body: { body } }),
  update: (taskId, commentId, body, version) =>
    request('PATCH', `${commentsPath(taskId)}/${encodeURIComponent(commentId)}`, { body: { body }, headers: ifMatch(version) }),
  remove: (taskId, commentId) => request('DELETE', `${commentsPath(taskId)}/${encodeURIComponent(commentId)}`),
};

export const adminApi = {
  listUsers: (params) => request('GET', `/admin/users${buildQuery(params)}`),
  updateUser: (id, changes) => request('PATCH', `/admin/users/${encodeURIComponent(id)}`, { body: changes }),
  deleteUser: (id) => request('DELETE', `/admin/users/${encodeURIComponent(id)}`),
};
