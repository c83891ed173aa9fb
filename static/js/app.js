// taskapi front end: wiring of the views to the REST API.

import { ApiError, adminApi, authApi, onSessionExpired, session, tasksApi } from './api.js';
import {
  $,
  $$,
  busy,
  clearErrorOnEdit,
  clearErrors,
  confirmDialog,
  dayToTimestamp,
  debounce,
  dueDay,
  formatDate,
  formatDay,
  initConfirmDialog,
  initial,
  show,
  showErrors,
  toast,
  today,
} from './ui.js';
import { startLiveFeed } from './live.js';

const STATUS_LABELS = { todo: 'To do', in_progress: 'In progress', done: 'Done' };
const PRIORITY_LABELS = { low: 'Low', medium: 'Medium', high: 'High' };

const state = {
  view: 'tasks',
  tasks: {
    items: [],
    total: 0,
    limit: 20,
    offset: 0,
    filters: { q: '', status: '', priority: '', sort: '-created_at' },
    seq: 0,
  },
  users: { items: [], total: 0, limit: 20, offset: 0, seq: 0 },
  editing: null,
};

const el = {};

/* ------------------------------------------------------------------ live updates */

// Changes made in another tab or device arrive on the change feed; the visible page is
// refetched (debounced, so a burst of changes costs one request), which keeps filters,
// sorting and paging right without patching the list by hand.
let liveFeed = null;
const refetchAfterChange = debounce(() => {
  if (!el.tasksView.hidden) loadTasks();
}, 150);

function startLive() {
  stopLive();
  liveFeed = startLiveFeed({
    onChange: refetchAfterChange,
    onReset: refetchAfterChange,
    // Revoked elsewhere (logout-all, password change, deactivation): the next API call
    // finds out and signs this tab out.
    onEnd: () => refreshCurrentUser(),
  });
}

function stopLive() {
  liveFeed?.stop();
  liveFeed = null;
}

function cacheElements() {
  for (const id of [
    'main-nav', 'nav-tasks', 'nav-admin', 'session-info', 'current-user-name', 'current-user-role',
    'current-user-initial', 'logout-button', 'auth-view', 'auth-notice', 'login-form', 'register-form',
    'tasks-view', 'tasks-summary', 'task-create-form', 'task-filters', 'task-list', 'tasks-empty',
    'tasks-empty-text', 'tasks-prev', 'tasks-next', 'tasks-page-info', 'admin-view', 'users-summary',
    'user-list', 'users-prev', 'users-next', 'users-page-info', 'edit-dialog', 'edit-form',
    'task-item-template', 'user-row-template', 'main',
  ]) {
    el[id.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = document.getElementById(id);
  }
}

/* ------------------------------------------------------------------ errors */

/** Report a failed action to the user; 401s are handled by the session-expired flow. */
function reportError(error, fallback = 'Something went wrong.') {
  if (error instanceof ApiError && error.status === 401 && !session.accessToken) return;
  if (error instanceof ApiError && error.status === 403) {
    toast('You no longer have permission to do that.', 'error');
    refreshCurrentUser();
    return;
  }
  toast(error instanceof ApiError ? error.summary : fallback, 'error');
}

/* ------------------------------------------------------------------ session */

function setAuthTab(tab) {
  for (const button of $$('[data-auth-tab]')) {
    button.setAttribute('aria-selected', String(button.dataset.authTab === tab));
  }
  show(el.loginForm, tab === 'login');
  show(el.registerForm, tab === 'register');
  const form = tab === 'login' ? el.loginForm : el.registerForm;
  const first = $('input', form);
  if (first) first.focus();
}

function setNotice(message, kind = 'info') {
  el.authNotice.textContent = message || '';
  el.authNotice.dataset.kind = kind;
  show(el.authNotice, Boolean(message));
}

function closeDialogs() {
  for (const dialog of $$('dialog[open]')) dialog.close('cancel');
}

function showAuth(notice = '', kind = 'info') {
  stopLive();
  closeDialogs();
  state.editing = null;
  state.tasks.items = [];
  state.users.items = [];
  el.taskList.replaceChildren();
  el.userList.replaceChildren();
  show(el.mainNav, false);
  show(el.sessionInfo, false);
  show(el.tasksView, false);
  show(el.adminView, false);
  show(el.authView, true);
  for (const form of [el.loginForm, el.registerForm]) {
    clearErrors(form);
    for (const input of $$('input[type="password"]', form)) input.value = '';
  }
  setNotice(notice, kind);
  document.title = 'taskapi · Sign in';
  setAuthTab(el.registerForm.hidden ? 'login' : 'register');
}

function renderSession(user) {
  el.currentUserName.textContent = user?.name || user?.email || '';
  el.currentUserInitial.textContent = initial(user?.name || user?.email);
  el.currentUserRole.textContent = user?.role === 'admin' ? 'Admin' : 'User';
  el.currentUserRole.className = `badge ${user?.role === 'admin' ? 'badge-admin' : 'badge-muted'}`;
  el.currentUserRole.dataset.role = user?.role || '';
  const admin = user?.role === 'admin';
  show(el.navAdmin, admin);
  show(el.mainNav, true);
  show(el.sessionInfo, true);
  if (!admin && state.view === 'admin' && !el.adminView.hidden) showView('tasks');
}

async function refreshCurrentUser() {
  try {
    const me = await authApi.me();
    session.setUser(me);
    renderSession(me);
  } catch {
    // handled elsewhere (session expiry) or transient
  }
}

function enterApp(user) {
  if (user) session.setUser(user);
  const current = session.user;
  show(el.authView, false);
  setNotice('');
  el.loginForm.reset();
  el.registerForm.reset();
  renderSession(current);
  startLive();
  const wanted = location.hash === '#admin' && current?.role === 'admin' ? 'admin' : 'tasks';
  showView(wanted, { force: true });
}

function showView(view, { force = false } = {}) {
  if (view === 'admin' && !session.isAdmin) view = 'tasks';
  const changed = force || state.view !== view;
  state.view = view;
  show(el.tasksView, view === 'tasks');
  show(el.adminView, view === 'admin');
  for (const tab of $$('[data-view]')) {
    if (tab.dataset.view === view) tab.setAttribute('aria-current', 'page');
    else tab.removeAttribute('aria-current');
  }
  const hash = view === 'admin' ? '#admin' : '#tasks';
  if (location.hash !== hash) history.replaceState(null, '', hash);
  document.title = view === 'admin' ? 'taskapi · Users' : 'taskapi · Tasks';
  if (!changed) return;
  if (view === 'admin') loadUsers();
  else loadTasks();
}

async function onLogin(event) {
  event.preventDefault();
  const form = el.loginForm;
  clearErrors(form);
  setNotice('');
  const email = form.elements.email.value.trim();
  const password = form.elements.password.value;
  try {
    const data = await busy(form, () => authApi.login(email, password));
    enterApp(data.user || (await authApi.me()));
    toast(`Welcome back, ${session.user?.name || email}!`, 'success');
  } catch (error) {
    showErrors(form, error);
  }
}

async function onRegister(event) {
  event.preventDefault();
  const form = el.registerForm;
  clearErrors(form);
  setNotice('');
  const payload = {
    name: form.elements.name.value.trim(),
    email: form.elements.email.value.trim(),
    password: form.elements.password.value,
  };
  let user;
  try {
    user = await busy(form, () => authApi.register(payload));
  } catch (error) {
    showErrors(form, error);
    return;
  }
  try {
    const data = await busy(form, () => authApi.login(payload.email, payload.password));
    enterApp(data.user || user);
    const role = (data.user || user)?.role;
    toast(
      role === 'admin'
        ? `Welcome, ${payload.name}! As the first user you are the administrator.`
        : `Welcome, ${payload.name}! Your account is ready.`,
      'success',
    );
  } catch {
    // Account exists; let the user sign in by hand.
    form.reset();
    setAuthTab('login');
    el.loginForm.elements.email.value = payload.email;
    el.loginForm.elements.password.focus();
    setNotice('Account created. Please log in.', 'success');
  }
}

async function onLogout() {
  await authApi.logout();
  setAuthTab('login');
  showAuth('You have been logged out.');
}

/* ------------------------------------------------------------------ tasks */

async function loadTasks() {
  const t = state.tasks;
  const seq = ++t.seq;
  el.taskList.setAttribute('aria-busy', 'true');
  try {
    const page = await tasksApi.list({
      limit: t.limit,
      offset: t.offset,
      status: t.filters.status,
      priority: t.filters.priority,
      q: t.filters.q,
      sort: t.filters.sort,
    });
    if (seq !== t.seq) return;
    t.items = Array.isArray(page?.items) ? page.items : [];
    t.total = Number.isFinite(page?.total) ? page.total : t.items.length;
    // Past 100 matches the server stops counting: `total` is then a lower bound.
    t.capped = page?.total_capped === true;
    if (Number.isFinite(page?.limit)) t.limit = page.limit;
    if (Number.isFinite(page?.offset)) t.offset = page.offset;
    if (!t.items.length && t.offset > 0 && t.total > 0) {
      // The page we were on disappeared (e.g. after deleting its last task).
      t.offset = Math.max(0, Math.floor((t.total - 1) / t.limit) * t.limit);
      loadTasks();
      return;
    }
    renderTasks();
  } catch (error) {
    if (seq === t.seq) reportError(error, 'Could not load tasks.');
  } finally {
    if (seq === t.seq) el.taskList.setAttribute('aria-busy', 'false');
  }
}

function hasFilters() {
  const f = state.tasks.filters;
  return Boolean(f.q || f.status || f.priority);
}

function renderTasks() {
  const t = state.tasks;
  el.taskList.replaceChildren(...t.items.map(renderTaskItem));
  const empty = t.items.length === 0;
  show(el.tasksEmpty, empty);
  el.tasksEmptyText.textContent = hasFilters()
    ? 'No tasks match these filters.'
    : 'No tasks yet. Add your first one above.';
  const noun = t.total === 1 ? 'task' : 'tasks';
  const count = t.capped ? `${t.total}+` : `${t.total}`;
  el.tasksSummary.textContent = hasFilters() ? `${count} matching ${noun}` : `${count} ${noun}`;
  renderPager(el.tasksPrev, el.tasksNext, el.tasksPageInfo, t);
}

function renderPager(prev, next, info, page) {
  const first = page.total === 0 ? 0 : page.offset + 1;
  const shown = page.offset + page.items.length;
  const last = page.capped ? shown : Math.min(shown, page.total);
  const of = page.capped ? `more than ${page.total}` : `${page.total}`;
  info.textContent = page.total === 0 ? 'No results' : `${first}–${last} of ${of}`;
  prev.disabled = page.offset <= 0;
  next.disabled = page.capped
    ? page.items.length < page.limit
    : page.offset + page.limit >= page.total;
}

function renderTaskItem(task) {
  const node = el.taskItemTemplate.content.firstElementChild.cloneNode(true);
  const done = task.status === 'done';
  node.dataset.taskId = task.id;
  node.dataset.status = task.status;
  node.dataset.priority = task.priority;
  node.classList.toggle('is-done', done);

  const toggle = $('[data-testid="task-toggle"]', node);
  toggle.checked = done;
  $('[data-role="toggle-label"]', node).textContent = done
    ? `Mark “${task.title}” as not done`
    : `Mark “${task.title}” as done`;

  $('[data-testid="task-title"]', node).textContent = task.title;

  const priority = $('[data-role="priority"]', node);
  priority.textContent = PRIORITY_LABELS[task.priority] || task.priority;
  priority.classList.add(`badge-${task.priority}`);

  const status = $('[data-role="status"]', node);
  status.textContent = STATUS_LABELS[task.status] || task.status;
  status.classList.add(`badge-status-${task.status}`);
  show(status, task.status === 'in_progress');

  const description = $('[data-role="description"]', node);
  description.textContent = task.description || '';
  show(description, Boolean(task.description));

  const meta = $('[data-role="meta"]', node);
  const parts = [];
  const due = dueDay(task.due_date);
  if (due) {
    const dueEl = document.createElement('span');
    const overdue = !done && due < today();
    dueEl.className = overdue ? 'due overdue' : 'due';
    dueEl.dataset.testid = 'task-due';
    dueEl.textContent = `${overdue ? 'Overdue · ' : 'Due '}${formatDay(due)}`;
    parts.push(dueEl);
  }
  const created = document.createElement('span');
  created.textContent = `Added ${formatDate(task.created_at)}`;
  parts.push(created);
  meta.replaceChildren(...parts);

  $('[data-action="edit"]', node).setAttribute('aria-label', `Edit “${task.title}”`);
  $('[data-action="delete"]', node).setAttribute('aria-label', `Delete “${task.title}”`);
  return node;
}

function findTask(id) {
  return state.tasks.items.find((task) => task.id === id) || null;
}

async function onCreateTask(event) {
  event.preventDefault();
  const form = el.taskCreateForm;
  clearErrors(form);
  const f = form.elements;
  const payload = {
    title: f.title.value.trim(),
    priority: f.priority.value,
    status: f.status.value,
  };
  const description = f.description.value.trim();
  if (description) payload.description = description;
  if (f.due_date.value) payload.due_date = dayToTimestamp(f.due_date.value);
  try {
    const task = await busy(form, () => tasksApi.create(payload));
    form.reset();
    f.title.focus();
    toast(`Added “${task?.title ?? payload.title}”`, 'success');
    state.tasks.offset = 0;
    await loadTasks();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && !session.accessToken) return;
    showErrors(form, error);
  }
}

async function onToggleTask(task, checkbox) {
  const status = checkbox.checked ? 'done' : 'todo';
  checkbox.disabled = true;
  try {
    await tasksApi.update(task.id, { status }, task.version);
    toast(status === 'done' ? `Completed “${task.title}”` : `Reopened “${task.title}”`, 'success');
  } catch (error) {
    checkbox.checked = !checkbox.checked;
    if (error instanceof ApiError && error.status === 412) {
      toast('That task was changed elsewhere. The list has been refreshed.', 'error');
    } else {
      reportError(error, 'Could not update the task.');
    }
  } finally {
    checkbox.disabled = false;
  }
  await loadTasks();
}

function fillEditForm(task) {
  const f = el.editForm.elements;
  f.title.value = task.title || '';
  f.description.value = task.description || '';
  f.status.value = task.status || 'todo';
  f.priority.value = task.priority || 'medium';
  f.due_date.value = dueDay(task.due_date);
}

function openEdit(task) {
  state.editing = task;
  clearErrors(el.editForm);
  fillEditForm(task);
  el.editDialog.showModal();
  el.editForm.elements.title.focus();
  el.editForm.elements.title.select();
}

function editChanges(task) {
  const f = el.editForm.elements;
  const changes = {};
  const title = f.title.value.trim();
  if (title !== task.title) changes.title = title;
  const description = f.description.value.trim();
  if (description !== (task.description || '')) changes.description = description || null;
  if (f.status.value !== task.status) changes.status = f.status.value;
  if (f.priority.value !== task.priority) changes.priority = f.priority.value;
  if (f.due_date.value !== dueDay(task.due_date)) changes.due_date = dayToTimestamp(f.due_date.value);
  return changes;
}

async function onEditSubmit(event) {
  event.preventDefault();
  const task = state.editing;
  if (!task) return;
  const form = el.editForm;
  clearErrors(form);
  const changes = editChanges(task);
  if (!Object.keys(changes).length) {
    el.editDialog.close('cancel');
    return;
  }
  try {
    const updated = await busy(form, () => tasksApi.update(task.id, changes, task.version));
    state.editing = null;
    el.editDialog.close('saved');
    toast(`Saved “${updated?.title ?? changes.title ?? task.title}”`, 'success');
    await loadTasks();
  } catch (error) {
    if (error instanceof ApiError && error.status === 412) {
      // Someone else changed it: load the latest version and let the user review.
      try {
        const latest = await tasksApi.get(task.id);
        state.editing = latest;
        fillEditForm(latest);
        showErrors(form, { summary: 'This task was changed elsewhere. The latest version is shown; review it and save again.' });
      } catch (inner) {
        el.editDialog.close('cancel');
        reportError(inner, 'Could not reload the task.');
      }
      loadTasks();
    } else if (error instanceof ApiError && error.status === 404) {
      el.editDialog.close('cancel');
      toast('That task no longer exists.', 'error');
      loadTasks();
    } else if (error instanceof ApiError && error.status === 401 && !session.accessToken) {
      // session expired: handled globally
    } else {
      showErrors(form, error);
    }
  }
}

async function onDeleteTask(task) {
  const ok = await confirmDialog({
    title: 'Delete task?',
    message: `“${task.title}” will be permanently deleted.`,
    confirmLabel: 'Delete task',
  });
  if (!ok) return;
  try {
    await tasksApi.remove(task.id, task.version);
    toast(`Deleted “${task.title}”`, 'success');
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) toast('That task was already deleted.', 'info');
    else if (error instanceof ApiError && error.status === 412) toast('That task was changed elsewhere. Review it and try again.', 'error');
    else reportError(error, 'Could not delete the task.');
  }
  await loadTasks();
}

function onTaskListClick(event) {
  const button = event.target.closest('button[data-action]');
  if (!button) return;
  const item = button.closest('[data-task-id]');
  const task = item && findTask(item.dataset.taskId);
  if (!task) return;
  if (button.dataset.action === 'edit') openEdit(task);
  else if (button.dataset.action === 'delete') onDeleteTask(task);
}

function onTaskListChange(event) {
  const checkbox = event.target.closest('input[type="checkbox"]');
  if (!checkbox) return;
  const item = checkbox.closest('[data-task-id]');
  const task = item && findTask(item.dataset.taskId);
  if (task) onToggleTask(task, checkbox);
}

function readFilters() {
  const f = el.taskFilters.elements;
  state.tasks.filters = {
    q: f.q.value.trim(),
    status: f.status.value,
    priority: f.priority.value,
    sort: f.sort.value,
  };
  state.tasks.limit = Number(f.limit.value) || 20;
  state.tasks.offset = 0;
}

const applyFiltersSoon = debounce(() => {
  readFilters();
  loadTasks();
}, 300);

/* ------------------------------------------------------------------ admin */

async function loadUsers() {
  const u = state.users;
  const seq = ++u.seq;
  el.userList.setAttribute('aria-busy', 'true');
  try {
    const page = await adminApi.listUsers({ limit: u.limit, offset: u.offset });
    if (seq !== u.seq) return;
    u.items = Array.isArray(page?.items) ? page.items : [];
    u.total = Number.isFinite(page?.total) ? page.total : u.items.length;
    if (!u.items.length && u.offset > 0 && u.total > 0) {
      u.offset = Math.max(0, Math.floor((u.total - 1) / u.limit) * u.limit);
      loadUsers();
      return;
    }
    renderUsers();
  } catch (error) {
    if (seq !== u.seq) return;
    if (error instanceof ApiError && error.status === 403) {
      toast('Only administrators can manage users.', 'error');
      await refreshCurrentUser();
      showView('tasks');
    } else {
      reportError(error, 'Could not load users.');
    }
  } finally {
    if (seq === u.seq) el.userList.setAttribute('aria-busy', 'false');
  }
}

function renderUsers() {
  const u = state.users;
  el.userList.replaceChildren(...u.items.map(renderUserRow));
  el.usersSummary.textContent = `${u.total} ${u.total === 1 ? 'account' : 'accounts'}`;
  renderPager(el.usersPrev, el.usersNext, el.usersPageInfo, u);
}

function renderUserRow(user) {
  const row = el.userRowTemplate.content.firstElementChild.cloneNode(true);
  const self = user.id === session.user?.id;
  const admin = user.role === 'admin';
  const active = user.active !== false;
  row.dataset.userId = user.id;
  row.dataset.email = user.email;
  row.dataset.role = user.role;
  row.classList.toggle('is-inactive', !active);

  $('[data-role="initial"]', row).textContent = initial(user.name || user.email);
  const name = $('[data-role="name"]', row);
  name.textContent = user.name;
  if (self) {
    const you = document.createElement('span');
    you.className = 'you';
    you.textContent = '(you)';
    name.after(you);
  }
  $('[data-role="email"]', row).textContent = user.email;

  const role = $('[data-role="role"]', row);
  role.textContent = admin ? 'Admin' : 'User';
  role.classList.add(admin ? 'badge-admin' : 'badge-muted');

  const status = $('[data-role="active"]', row);
  status.textContent = active ? 'Active' : 'Inactive';
  status.classList.add(active ? 'badge-success' : 'badge-muted');

  $('[data-role="created"]', row).textContent = formatDate(user.created_at);

  const roleButton = $('[data-action="role"]', row);
  roleButton.textContent = admin ? 'Make user' : 'Make admin';
  roleButton.setAttribute('aria-label', `${admin ? 'Make user' : 'Make admin'}: ${user.email}`);
  const activeButton = $('[data-action="active"]', row);
  activeButton.textContent = active ? 'Deactivate' : 'Activate';
  activeButton.setAttribute('aria-label', `${active ? 'Deactivate' : 'Activate'} ${user.email}`);
  const deleteButton = $('[data-action="delete"]', row);
  deleteButton.setAttribute('aria-label', `Delete ${user.email}`);

  if (self) {
    for (const b of [roleButton, activeButton, deleteButton]) {
      b.disabled = true;
      b.title = 'You cannot change your own account here.';
    }
  }
  return row;
}

async function onUserAction(event) {
  const button = event.target.closest('button[data-action]');
  if (!button) return;
  const row = button.closest('[data-user-id]');
  const user = row && state.users.items.find((u) => u.id === row.dataset.userId);
  if (!user) return;

  const action = button.dataset.action;
  try {
    if (action === 'role') {
      const role = user.role === 'admin' ? 'user' : 'admin';
      button.disabled = true;
      await adminApi.updateUser(user.id, { role });
      toast(`${user.name} is now ${role === 'admin' ? 'an administrator' : 'a regular user'}.`, 'success');
    } else if (action === 'active') {
      const active = user.active === false;
      button.disabled = true;
      await adminApi.updateUser(user.id, { active });
      toast(`${user.name} has been ${active ? 'activated' : 'deactivated'}.`, 'success');
    } else if (action === 'delete') {
      const ok = await confirmDialog({
        title: 'Delete user?',
        message: `${user.name} (${user.email}) and all of their tasks will be permanently deleted.`,
        confirmLabel: 'Delete user',
      });
      if (!ok) return;
      await adminApi.deleteUser(user.id);
      toast(`Deleted ${user.email}.`, 'success');
    } else {
      return;
    }
  } catch (error) {
    reportError(error, 'Could not update the user.');
  } finally {
    button.disabled = false;
  }
  await loadUsers();
}

/* ------------------------------------------------------------------ wiring */

function wire() {
  for (const button of $$('[data-auth-tab]')) {
    button.addEventListener('click', () => {
      setNotice('');
      setAuthTab(button.dataset.authTab);
    });
  }
  el.loginForm.addEventListener('submit', onLogin);
  el.registerForm.addEventListener('submit', onRegister);
  el.logoutButton.addEventListener('click', onLogout);

  for (const tab of $$('[data-view]')) {
    tab.addEventListener('click', () => showView(tab.dataset.view));
  }

  el.taskCreateForm.addEventListener('submit', onCreateTask);
  el.taskList.addEventListener('click', onTaskListClick);
  el.taskList.addEventListener('change', onTaskListChange);

  el.taskFilters.addEventListener('submit', (event) => {
    event.preventDefault();
    readFilters();
    loadTasks();
  });
  el.taskFilters.addEventListener('change', (event) => {
    if (event.target.name === 'q') return;
    readFilters();
    loadTasks();
  });
  el.taskFilters.elements.q.addEventListener('input', applyFiltersSoon);

  el.tasksPrev.addEventListener('click', () => {
    state.tasks.offset = Math.max(0, state.tasks.offset - state.tasks.limit);
    loadTasks();
  });
  el.tasksNext.addEventListener('click', () => {
    state.tasks.offset += state.tasks.limit;
    loadTasks();
  });

  el.editForm.addEventListener('submit', onEditSubmit);
  for (const button of $$('[data-close-dialog]', el.editDialog)) {
    button.addEventListener('click', () => el.editDialog.close('cancel'));
  }
  el.editDialog.addEventListener('close', () => {
    state.editing = null;
  });

  el.userList.addEventListener('click', onUserAction);
  el.usersPrev.addEventListener('click', () => {
    state.users.offset = Math.max(0, state.users.offset - state.users.limit);
    loadUsers();
  });
  el.usersNext.addEventListener('click', () => {
    state.users.offset += state.users.limit;
    loadUsers();
  });

  initConfirmDialog();
  for (const form of [el.loginForm, el.registerForm, el.taskCreateForm, el.editForm]) clearErrorOnEdit(form);

  onSessionExpired(() => {
    showAuth('Your session has expired. Please log in again.', 'warning');
  });

  // Keyboard shortcut: "/" focuses the task search box.
  document.addEventListener('keydown', (event) => {
    if (event.key !== '/' || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target instanceof HTMLElement && target.closest('input, textarea, select, [contenteditable], dialog')) return;
    if (el.tasksView.hidden) return;
    event.preventDefault();
    el.taskFilters.elements.q.focus();
  });
}

async function restoreSession() {
  if (!session.accessToken) {
    showAuth();
    return;
  }
  try {
    const me = await authApi.me();
    enterApp(me);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      session.clear();
      showAuth('Your session has expired. Please log in again.', 'warning');
    } else if (session.user) {
      enterApp(session.user);
      reportError(error);
    } else {
      session.clear();
      showAuth(error instanceof ApiError ? error.summary : 'Could not reach the server.', 'error');
    }
  }
}

async function boot() {
  cacheElements();
  wire();
  try {
    await restoreSession();
  } finally {
    document.documentElement.classList.add('ready');
  }
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', boot, { once: true });
} else {
  boot();
}
