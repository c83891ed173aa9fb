// taskapi front end: wiring of the views to the REST API.

import { ApiError, adminApi, authApi, commentsApi, onSessionExpired, projectsApi, session, tasksApi } from './api.js';
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
  formatDateTime,
  formatDay,
  initConfirmDialog,
  initial,
  paintChip,
  show,
  showErrors,
  toast,
  today,
} from './ui.js';
import { startLiveFeed } from './live.js';

const STATUS_LABELS = { todo: 'To do', in_progress: 'In progress', done: 'Done' };
const PRIORITY_LABELS = { low: 'Low', medium: 'Medium', high: 'High' };
const ROLE_LABELS = { viewer: 'Viewer', editor: 'Editor', admin: 'Admin' };
const WRITER_ROLES = new Set(['editor', 'admin']);
// The selected project survives a reload of the tab (not the session: logout forgets it).
const PROJECT_KEY = 'taskapi.project';

const state = {
  view: 'tasks',
  tasks: {
    items: [],
    total: 0,
    limit: 20,
    offset: 0,
    filters: { q: '', status: '', priority: '', sort: '-created_at', assignee: '', labels: [] },
    seq: 0,
  },
  users: { items: [], total: 0, limit: 20, offset: 0, seq: 0 },
  // The caller's projects (Inbox first) and the one whose tasks are shown; null = the Inbox.
  projects: { items: [], selectedId: null, seq: 0 },
  // The project whose members the share dialog shows.
  members: { projectId: null, items: [], seq: 0 },
  // The members and labels of the selected project (chips, filters, the task editor).
  meta: { projectId: null, members: [], labels: [], seq: 0 },
  // The task whose comment thread is open.
  comments: { taskId: null, task: null, items: [], seq: 0 },
  editing: null,
};

const el = {};

/* ------------------------------------------------------------------ live updates */

// Changes made in another tab or device, or by another member of a shared project, arrive
// on the change feed, which carries the events of every project the user is a member of.
// Only a change to the selected project refetches the visible page (debounced, so a burst
// of changes costs one request), which keeps filters, sorting and paging right without
// patching the list by hand. An event of a project the sidebar does not know yet (the user
// has just been added to it) reloads the project list.
let liveFeed = null;
const refetchAfterChange = debounce(() => {
  if (!el.tasksView.hidden) loadTasks();
}, 150);
const reloadProjectsSoon = debounce(() => loadProjects(), 150);

const reloadMetaSoon = debounce(() => loadProjectMeta(), 150);
const reloadCommentsSoon = debounce(() => loadComments(), 150);
const reloadMembersSoon = debounce(() => loadMembers(), 150);

// Besides task events, the feed carries comment, label and member events of the user's
// projects. A comment changes its task's count (patched in place) and the open thread; a
// label or member change reloads the selected project's labels and members (chips, filters,
// the editor); the user's own removal drops the project from the sidebar at once.
function onFeedChange(type, data) {
  const projectId = typeof data?.project_id === 'string' ? data.project_id : null;
  const selected = !projectId || projectId === selectedProjectId();
  if (type === 'member.removed' && projectId && data?.user_id === session.user?.id) {
    onRemovedFromProject(projectId);
    return;
  }
  if (projectId && !state.projects.items.some((p) => p.id === projectId)) reloadProjectsSoon();
  if (type.startsWith('comment.')) {
    if (data?.task_id && data.task_id === state.comments.taskId && el.commentsDialog.open) reloadCommentsSoon();
    if (selected) updateCommentCount(data?.task_id, data?.comment_count);
    return;
  }
  if (type.startsWith('label.') || type.startsWith('member.')) {
    if (selected) reloadMetaSoon();
    if (type.startsWith('member.') && el.shareDialog.open && projectId === state.members.projectId) reloadMembersSoon();
    return;
  }
  if (selected) refetchAfterChange();
}

/** The user was removed from (or left) a project, maybe in another tab: forget it now. */
function onRemovedFromProject(projectId) {
  const project = state.projects.items.find((p) => p.id === projectId);
  state.projects.items = state.projects.items.filter((p) => p.id !== projectId);
  if (state.members.projectId === projectId && el.shareDialog.open) el.shareDialog.close('removed');
  if (projectId === selectedProjectId()) {
    for (const dialog of [el.editDialog, el.commentsDialog, el.labelsDialog]) {
      if (dialog.open) dialog.close('cancel');
    }
    if (project) toast(`You are no longer a member of “${project.name}”.`, 'info');
    selectProject(null);
  } else {
    renderProjects();
  }
  reloadProjectsSoon();
}

function onFeedReset() {
  reloadProjectsSoon();
  refetchAfterChange();
  reloadMetaSoon();
  if (el.commentsDialog.open) reloadCommentsSoon();
}

function startLive() {
  stopLive();
  liveFeed = startLiveFeed({
    onChange: onFeedChange,
    onReset: onFeedReset,
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
    'project-list', 'project-create-form', 'project-dot', 'tasks-heading', 'project-role', 'project-share',
    'readonly-notice', 'project-item-template', 'share-dialog', 'share-heading', 'share-intro', 'member-list',
    'member-error', 'member-add-form', 'member-item-template',
    'project-labels', 'filter-assignee', 'filter-labels', 'filter-labels-field', 'filter-label-options',
    'edit-project', 'edit-project-hint', 'edit-assignees', 'edit-assignees-field', 'edit-labels', 'edit-labels-field',
    'edit-labels-empty', 'labels-dialog', 'labels-heading', 'labels-intro', 'label-list', 'labels-empty', 'label-error',
    'label-create-form', 'label-item-template', 'comments-dialog', 'comments-heading', 'comments-summary',
    'comment-list', 'comment-error', 'comment-form', 'comment-item-template',
    'new-task-assignees', 'new-task-assignee-options', 'new-task-labels', 'new-task-label-options',
    'new-task-labels-field',
  ]) {
    el[id.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = document.getElementById(id);
  }
}

/* ------------------------------------------------------------------ errors */

/**
 * Report a failed action to the user; 401s are handled by the session-expired flow. A 403
 * shows the server's reason, and the user's account and project roles are reloaded, since
 * one of them has changed (the controls then match what the user may do).
 */
function reportError(error, fallback = 'Something went wrong.') {
  if (error instanceof ApiError && error.status === 401 && !session.accessToken) return;
  if (error instanceof ApiError && error.status === 403) {
    toast(error.detail || 'You no longer have permission to do that.', 'error');
    refreshCurrentUser();
    loadProjects();
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
  state.tasks.projectId = null;
  state.users.items = [];
  state.projects.items = [];
  state.projects.selectedId = null;
  state.projects.seq += 1;
  state.members.items = [];
  state.meta = { projectId: null, members: [], labels: [], seq: state.meta.seq + 1 };
  state.comments = { taskId: null, task: null, items: [], seq: state.comments.seq + 1 };
  state.tasks.filters = { ...state.tasks.filters, assignee: '', labels: [] };
  sessionStorage.removeItem(PROJECT_KEY);
  el.taskList.replaceChildren();
  el.userList.replaceChildren();
  el.projectList.replaceChildren();
  el.memberList.replaceChildren();
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
  state.projects.selectedId = sessionStorage.getItem(PROJECT_KEY) || null;
  renderProjectHeader();
  loadProjects();
  loadProjectMeta();
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
  document.title = view === 'admin' ? 'taskapi · Users' : `taskapi · ${currentProject()?.name || 'Tasks'}`;
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
  const projectId = selectedProjectId();
  const query = {
    limit: t.limit,
    offset: t.offset,
    status: t.filters.status,
    priority: t.filters.priority,
    q: t.filters.q,
    sort: t.filters.sort,
    assignee: t.filters.assignee,
    label: t.filters.labels,
  };
  try {
    // The Inbox is GET /tasks; any other project is listed under its own route.
    const page = isInbox(projectId) ? await tasksApi.list(query) : await projectsApi.tasks(projectId, query);
    if (seq !== t.seq) return;
    t.items = Array.isArray(page?.items) ? page.items : [];
    t.projectId = projectId;
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
    if (seq !== t.seq) return;
    if (error instanceof ApiError && error.status === 404 && !isInbox(projectId)) {
      // Removed from the project, or it was deleted: back to the Inbox.
      toast(error.detail || 'That project is no longer available.', 'error');
      selectProject(null);
      loadProjects();
      return;
    }
    reportError(error, 'Could not load tasks.');
  } finally {
    if (seq === t.seq) el.taskList.setAttribute('aria-busy', 'false');
  }
}

function hasFilters() {
  const f = state.tasks.filters;
  return Boolean(f.q || f.status || f.priority || f.assignee || f.labels?.length);
}

function renderTasks() {
  const t = state.tasks;
  const writable = canWrite();
  el.taskList.dataset.writable = String(writable);
  el.taskList.replaceChildren(...t.items.map((task) => renderTaskItem(task, writable)));
  const empty = t.items.length === 0;
  show(el.tasksEmpty, empty);
  el.tasksEmptyText.textContent = hasFilters()
    ? 'No tasks match these filters.'
    : writable
      ? 'No tasks yet. Add your first one above.'
      : 'This project has no tasks yet.';
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

function renderTaskItem(task, writable = true) {
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

  renderTaskChips($('[data-role="chips"]', node), task);
  renderCommentCount(node, task);

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

  if (!writable) {
    // A viewer gets the task's state (and its comments, read only), not the controls to change it.
    for (const button of $$('[data-action="edit"], [data-action="delete"]', node)) button.remove();
    toggle.disabled = true;
    $('[data-role="toggle-label"]', node).textContent = done ? `“${task.title}” is done` : `“${task.title}” is not done`;
    return node;
  }
  $('[data-action="edit"]', node).setAttribute('aria-label', `Edit “${task.title}”`);
  $('[data-action="delete"]', node).setAttribute('aria-label', `Delete “${task.title}”`);
  return node;
}

/** The selected project's label or member with this id, or null while they are not loaded. */
function labelById(id) {
  return state.meta.labels.find((l) => l.id === id) || null;
}

function memberById(id) {
  return state.meta.members.find((m) => m.user_id === id) || null;
}

function metaFor(projectId) {
  return state.meta.projectId === projectId;
}

function labelChip(label) {
  const chip = document.createElement('span');
  chip.className = 'chip chip-label';
  chip.dataset.testid = 'task-label-chip';
  chip.dataset.labelId = label.id;
  chip.textContent = label.name;
  paintChip(chip, label.color);
  return chip;
}

function assigneeChip(member) {
  const chip = document.createElement('span');
  chip.className = 'chip chip-assignee';
  chip.dataset.testid = 'task-assignee-chip';
  chip.dataset.userId = member.user_id;
  chip.title = `Assigned to ${member.name || member.email}`;
  const avatar = document.createElement('span');
  avatar.className = 'avatar avatar-xs';
  avatar.setAttribute('aria-hidden', 'true');
  avatar.textContent = initial(member.name || member.email);
  const name = document.createElement('span');
  name.textContent = member.name || member.email;
  chip.append(avatar, name);
  return chip;
}

/** Label chips (in the label's colour) and assignee chips of a task row. */
function renderTaskChips(container, task) {
  const chips = [];
  if (metaFor(task.project_id)) {
    for (const id of Array.isArray(task.label_ids) ? task.label_ids : []) {
      const label = labelById(id);
      if (label) chips.push(labelChip(label));
    }
    for (const id of Array.isArray(task.assignee_ids) ? task.assignee_ids : []) {
      const member = memberById(id);
      if (member) chips.push(assigneeChip(member));
    }
  }
  container.replaceChildren(...chips);
  show(container, chips.length > 0);
}

function renderCommentCount(node, task) {
  const count = Number.isFinite(task.comment_count) ? task.comment_count : 0;
  $('[data-role="comment-count"]', node).textContent = String(count);
  const button = $('[data-action="comments"]', node);
  button.classList.toggle('has-comments', count > 0);
  button.setAttribute('aria-label', `Comments on “${task.title}” (${count})`);
}

/** A comment event: the task's new count, without refetching the page. */
function updateCommentCount(taskId, count) {
  if (!taskId || !Number.isFinite(count)) return;
  const task = findTask(taskId);
  if (!task) return;
  task.comment_count = count;
  const node = el.taskList.querySelector(`[data-task-id="${CSS.escape(taskId)}"]`);
  if (node) renderCommentCount(node, task);
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
  const projectId = selectedProjectId();
  if (projectId) payload.project_id = projectId;
  const assignees = $$('input[name="assignee_ids"]:checked', form).map((input) => input.value);
  if (assignees.length) payload.assignee_ids = assignees;
  const labels = $$('input[name="label_ids"]:checked', form).map((input) => input.value);
  if (labels.length) payload.label_ids = labels;
  try {
    const task = await busy(form, () => tasksApi.create(payload));
    form.reset();
    renderComposerSummaries();
    f.title.focus();
    toast(`Added “${task?.title ?? payload.title}”`, 'success');
    state.tasks.offset = 0;
    await loadTasks();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && !session.accessToken) return;
    if (error instanceof ApiError && error.status === 403) {
      reportError(error);
      return;
    }
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
  fillProjectSelect(task);
  fillPickers(task);
  onEditProjectChange();
}

/** The projects a task can be moved to: those where the user may write (and not archived). */
function fillProjectSelect(task) {
  const options = state.projects.items
    .filter((p) => p.id === task.project_id || (!p.archived && WRITER_ROLES.has(p.role)))
    .map((p) => {
      const option = document.createElement('option');
      option.value = p.id;
      option.textContent = p.name;
      return option;
    });
  if (!options.some((o) => o.value === task.project_id)) {
    const option = document.createElement('option');
    option.value = task.project_id;
    option.textContent = currentProject()?.name || 'This project';
    options.unshift(option);
  }
  el.editProject.replaceChildren(...options);
  el.editProject.value = task.project_id;
}

function pickerOption(name, value, checked, testid, content) {
  const label = document.createElement('label');
  label.className = 'picker-option';
  const input = document.createElement('input');
  input.type = 'checkbox';
  input.name = name;
  input.value = value;
  input.checked = checked;
  input.dataset.testid = testid;
  label.append(input, ...content);
  return label;
}

/** Checkboxes for the members (assignees) and labels of the task's project. */
function fillPickers(task) {
  const known = metaFor(task.project_id);
  const assigned = new Set(task.assignee_ids || []);
  const labelled = new Set(task.label_ids || []);
  el.editAssignees.replaceChildren(...(known ? state.meta.members : []).map((m) => {
    const avatar = document.createElement('span');
    avatar.className = 'avatar avatar-xs';
    avatar.setAttribute('aria-hidden', 'true');
    avatar.textContent = initial(m.name || m.email);
    const name = document.createElement('span');
    name.textContent = m.user_id === session.user?.id ? `${m.name || m.email} (you)` : m.name || m.email;
    const option = pickerOption('assignee_ids', m.user_id, assigned.has(m.user_id), 'edit-assignee-option', [avatar, name]);
    option.dataset.email = m.email;
    return option;
  }));
  el.editLabels.replaceChildren(...(known ? state.meta.labels : []).map((l) => {
    const chip = document.createElement('span');
    chip.className = 'chip chip-label';
    chip.textContent = l.name;
    paintChip(chip, l.color);
    const option = pickerOption('label_ids', l.id, labelled.has(l.id), 'edit-label-option', [chip]);
    option.dataset.name = l.name;
    return option;
  }));
  show(el.editLabelsEmpty, known && state.meta.labels.length === 0);
}

/** Moving to another project: its own members and labels apply, so the pickers are off. */
function onEditProjectChange() {
  const task = state.editing;
  const moving = Boolean(task) && el.editProject.value !== task.project_id;
  el.editAssigneesField.disabled = moving;
  el.editLabelsField.disabled = moving;
  show(el.editProjectHint, moving);
}

const checkedValues = (name) =>
  $$(`input[name="${name}"]:checked`, el.editForm).map((input) => input.value);

function sameSet(a, b) {
  const x = new Set(a);
  return x.size === new Set(b).size && b.every((v) => x.has(v));
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
  const projectId = el.editProject.value;
  if (projectId && projectId !== task.project_id) {
    changes.project_id = projectId;
  } else if (metaFor(task.project_id)) {
    const assignees = checkedValues('assignee_ids');
    if (!sameSet(assignees, task.assignee_ids || [])) changes.assignee_ids = assignees;
    const labels = checkedValues('label_ids');
    if (!sameSet(labels, task.label_ids || [])) changes.label_ids = labels;
  }
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
    if (updated?.moved) toast(moveNotice(updated, task), 'success');
    else toast(`Saved “${updated?.title ?? changes.title ?? task.title}”`, 'success');
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
    } else if (error instanceof ApiError && error.status === 403) {
      el.editDialog.close('cancel');
      reportError(error);
      loadTasks();
    } else {
      showErrors(form, error);
    }
  }
}

/** "Moved … to …", naming the labels and assignees the move dropped (from `moved`). */
function moveNotice(updated, task) {
  const target = state.projects.items.find((p) => p.id === updated.project_id);
  const where = target ? `“${target.name}”` : 'the other project';
  let text = `Moved “${updated.title ?? task.title}” to ${where}.`;
  const moved = updated.moved || {};
  const labels = (Array.isArray(moved.dropped_label_ids) ? moved.dropped_label_ids : [])
    .map((id) => (labelById(id) ? `“${labelById(id).name}”` : 'a label'));
  const people = (Array.isArray(moved.dropped_assignee_ids) ? moved.dropped_assignee_ids : [])
    .map((id) => memberById(id)?.name || 'an assignee');
  if (labels.length) text += ` Labels dropped (no such label there): ${labels.join(', ')}.`;
  if (people.length) text += ` Assignees dropped (not members there): ${people.join(', ')}.`;
  return text;
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
  else if (button.dataset.action === 'comments') openComments(task);
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
    assignee: f.assignee.value,
    labels: $$('input[name="label"]:checked', el.taskFilters).map((input) => input.value),
  };
  renderLabelFilterSummary();
  state.tasks.limit = Number(f.limit.value) || 20;
  state.tasks.offset = 0;
}

const applyFiltersSoon = debounce(() => {
  readFilters();
  loadTasks();
}, 300);

/* ------------------------------------------------------------------ projects */

/** Is `id` the user's Inbox? (An Inbox's id is its user's id; null stands for it too.) */
function isInbox(id) {
  return !id || id === session.user?.id;
}

/** The id of the project whose tasks are shown (the user's id for the Inbox). */
function selectedProjectId() {
  return state.projects.selectedId || session.user?.id || null;
}

function currentProject() {
  const id = selectedProjectId();
  return state.projects.items.find((p) => p.id === id) || null;
}

/** May the user change tasks of the selected project? (The Inbox, or one not loaded yet: yes.) */
function canWrite(project = currentProject()) {
  if (!project) return isInbox(selectedProjectId());
  return WRITER_ROLES.has(project.role);
}

function paintDot(dot, color) {
  // CSSOM, not a style attribute: allowed by the page's Content-Security-Policy.
  const valid = typeof color === 'string' && /^#[0-9a-fA-F]{6}$/.test(color);
  dot.style.backgroundColor = valid ? color : '';
  dot.classList.toggle('project-dot-none', !valid);
}

async function loadProjects() {
  const p = state.projects;
  const seq = ++p.seq;
  el.projectList.setAttribute('aria-busy', 'true');
  try {
    const list = await projectsApi.list();
    if (seq !== p.seq) return;
    p.items = Array.isArray(list?.items) ? list.items : [];
    if (p.selectedId && !p.items.some((project) => project.id === p.selectedId)) {
      // No longer a member (or the project is gone): show the Inbox instead.
      selectProject(null);
      return;
    }
    renderProjects();
    renderProjectHeader();
  } catch (error) {
    if (seq === p.seq) reportError(error, 'Could not load your projects.');
  } finally {
    if (seq === p.seq) el.projectList.setAttribute('aria-busy', 'false');
  }
}

function renderProjects() {
  const selected = selectedProjectId();
  el.projectList.replaceChildren(...state.projects.items.map((project) => {
    const item = el.projectItemTemplate.content.firstElementChild.cloneNode(true);
    const button = $('button', item);
    button.dataset.projectId = project.id;
    button.dataset.role = project.role || '';
    button.title = project.name; // the name may be cut short in the sidebar
    if (project.id === selected) button.setAttribute('aria-current', 'page');
    paintDot($('[data-role="dot"]', item), project.inbox ? null : project.color);
    $('[data-role="name"]', item).textContent = project.name;
    const badge = $('[data-role="badge"]', item);
    if (project.archived) {
      badge.textContent = 'Archived';
    } else if (!project.inbox) {
      badge.textContent = ROLE_LABELS[project.role] || project.role || '';
    }
    show(badge, Boolean(badge.textContent));
    button.classList.toggle('is-inbox', Boolean(project.inbox));
    button.classList.toggle('is-archived', Boolean(project.archived));
    return item;
  }));
}

/** The heading, role badge and Share button of the selected project, and what the user may do in it. */
function renderProjectHeader() {
  const project = currentProject();
  const inbox = project ? Boolean(project.inbox) : isInbox(selectedProjectId());
  el.tasksHeading.textContent = project?.name || (inbox ? 'Inbox' : 'Project');
  paintDot(el.projectDot, inbox ? null : project?.color);
  show(el.projectDot, !inbox);

  const role = project && !inbox ? project.role : '';
  el.projectRole.textContent = ROLE_LABELS[role] || '';
  el.projectRole.dataset.role = role || '';
  el.projectRole.className = `badge ${role === 'admin' ? 'badge-admin' : 'badge-muted'}`;
  show(el.projectRole, Boolean(role));

  // Admins share the project; other members can see who is in it, and leave.
  show(el.projectShare, Boolean(project) && !inbox);
  el.projectShare.textContent = role === 'admin' ? 'Share' : 'Members';

  const writable = canWrite(project);
  el.tasksView.dataset.writable = String(writable);
  show(el.taskCreateForm, writable);
  show(el.readonlyNotice, !writable);
  if (state.view === 'tasks' && !el.tasksView.hidden) {
    document.title = `taskapi · ${el.tasksHeading.textContent}`;
  }
  // The rows' controls follow the role (rendered again once the rows are this project's).
  if (state.tasks.projectId === selectedProjectId() && el.taskList.dataset.writable !== String(writable)) {
    renderTasks();
  }
}

/** Show the tasks of project `id` (null: the Inbox). */
function selectProject(id) {
  const p = state.projects;
  const next = isInbox(id) ? null : id;
  if (p.selectedId !== next) {
    p.selectedId = next;
    if (next) sessionStorage.setItem(PROJECT_KEY, next);
    else sessionStorage.removeItem(PROJECT_KEY);
    state.tasks.offset = 0;
    state.tasks.items = [];
    state.tasks.projectId = null;
    // Members and labels are the project's own: their filters do not carry over.
    state.tasks.filters = { ...state.tasks.filters, assignee: '', labels: [] };
    el.filterAssignee.value = '';
    state.meta = { projectId: null, members: [], labels: [], seq: state.meta.seq + 1 };
    renderFilterOptions();
    renderComposerPickers();
    el.taskList.replaceChildren();
    show(el.tasksEmpty, false);
    el.tasksSummary.textContent = '';
    el.tasksPageInfo.textContent = '';
  }
  renderProjects();
  renderProjectHeader();
  loadTasks();
  loadProjectMeta();
}

function onProjectListClick(event) {
  const button = event.target.closest('button[data-project-id]');
  if (!button) return;
  selectProject(button.dataset.projectId);
  // Roles change elsewhere (a promotion arrives as no event): refresh them on each visit.
  loadProjects();
}

async function onCreateProject(event) {
  event.preventDefault();
  const form = el.projectCreateForm;
  clearErrors(form);
  const f = form.elements;
  const payload = { name: f.name.value.trim() };
  if (f.color.value) payload.color = f.color.value;
  try {
    const project = await busy(form, () => projectsApi.create(payload));
    form.reset();
    toast(`Created the project “${project?.name ?? payload.name}”`, 'success');
    if (project?.id) {
      state.projects.items = [...state.projects.items, project];
      selectProject(project.id);
    }
    await loadProjects();
    f.name.focus();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && !session.accessToken) return;
    showErrors(form, error);
  }
}

/* ------------------------------------------------------------------ sharing */

function memberProject() {
  return state.projects.items.find((p) => p.id === state.members.projectId) || null;
}

function setMemberError(message) {
  el.memberError.textContent = message || '';
  show(el.memberError, Boolean(message));
}

function openShare() {
  const project = currentProject();
  if (!project || project.inbox) return;
  state.members.projectId = project.id;
  state.members.items = [];
  el.memberList.replaceChildren();
  setMemberError('');
  clearErrors(el.memberAddForm);
  el.memberAddForm.reset();
  renderShareMode();
  el.shareDialog.showModal();
  if (project.role === 'admin') el.memberAddForm.elements.email.focus();
  else $('[data-close-dialog]', el.shareDialog).focus();
  loadMembers();
}

function renderShareMode() {
  const project = memberProject();
  const admin = project?.role === 'admin';
  const name = project?.name || '';
  el.shareHeading.textContent = admin ? `Share “${name}”` : `Members of “${name}”`;
  el.shareIntro.textContent = admin
    ? 'Viewers can read the tasks; editors can also add, change and delete them; admins can also share the project.'
    : `You are ${project?.role === 'editor' ? 'an editor' : 'a viewer'} of this project. Only its admins can change who is in it.`;
  show(el.memberAddForm, admin);
}

async function loadMembers() {
  const m = state.members;
  const seq = ++m.seq;
  const projectId = m.projectId;
  if (!projectId) return;
  el.memberList.setAttribute('aria-busy', 'true');
  try {
    const list = await projectsApi.members(projectId);
    if (seq !== m.seq) return;
    m.items = Array.isArray(list?.items) ? list.items : [];
    renderMembers();
  } catch (error) {
    if (seq !== m.seq) return;
    if (error instanceof ApiError && error.status === 404) {
      el.shareDialog.close('cancel');
      toast(error.detail || 'That project is no longer available.', 'error');
      loadProjects();
      return;
    }
    if (error instanceof ApiError && error.status === 401 && !session.accessToken) return;
    setMemberError(error instanceof ApiError ? error.summary : 'Could not load the members.');
  } finally {
    if (seq === m.seq) el.memberList.setAttribute('aria-busy', 'false');
  }
}

function renderMembers() {
  const admin = memberProject()?.role === 'admin';
  el.memberList.replaceChildren(...state.members.items.map((member) => renderMemberItem(member, admin)));
}

function renderMemberItem(member, admin) {
  const item = el.memberItemTemplate.content.firstElementChild.cloneNode(true);
  const self = member.user_id === session.user?.id;
  item.dataset.userId = member.user_id;
  item.dataset.email = member.email;
  item.dataset.role = member.role;
  $('[data-role="initial"]', item).textContent = initial(member.name || member.email);
  const name = $('[data-role="name"]', item);
  name.textContent = member.name || member.email;
  if (self) {
    const you = document.createElement('span');
    you.className = 'you';
    you.textContent = '(you)';
    name.after(you);
  }
  $('[data-role="email"]', item).textContent = member.email;

  const badge = $('[data-role="role"]', item);
  badge.textContent = ROLE_LABELS[member.role] || member.role;
  badge.classList.add(member.role === 'admin' ? 'badge-admin' : 'badge-muted');
  const select = $('select[data-action="role"]', item);
  select.value = member.role;
  select.setAttribute('aria-label', `Role of ${member.email}`);
  // Admins change roles with the select; everyone else sees the badge.
  show(select, admin);
  show(badge, !admin);

  const remove = $('[data-action="remove"]', item);
  if (self) {
    remove.textContent = 'Leave';
    remove.dataset.testid = 'member-leave';
    remove.setAttribute('aria-label', 'Leave this project');
  } else {
    remove.setAttribute('aria-label', `Remove ${member.email}`);
    show(remove, admin);
  }
  return item;
}

function findMember(node) {
  const item = node.closest('[data-user-id]');
  return item ? state.members.items.find((m) => m.user_id === item.dataset.userId) || null : null;
}

/** A change to the user's own membership: their role in the project is no longer what the page knows. */
async function afterOwnMembershipChange() {
  await loadProjects();
  if (el.shareDialog.open) {
    renderShareMode();
    renderMembers();
  }
}

async function onMemberRoleChange(event) {
  const select = event.target.closest('select[data-action="role"]');
  if (!select) return;
  const member = findMember(select);
  const projectId = state.members.projectId;
  if (!member || !projectId) return;
  const role = select.value;
  setMemberError('');
  select.disabled = true;
  try {
    await projectsApi.updateMember(projectId, member.user_id, role);
    toast(`${member.name || member.email} is now ${ROLE_LABELS[role]?.toLowerCase() || role}.`, 'success');
    if (member.user_id === session.user?.id) await afterOwnMembershipChange();
  } catch (error) {
    select.value = member.role;
    if (error instanceof ApiError && error.status === 401 && !session.accessToken) return;
    setMemberError(error instanceof ApiError ? error.summary : 'Could not change the role.');
    if (error instanceof ApiError && error.status === 403) loadProjects().then(renderShareMode);
  } finally {
    select.disabled = false;
  }
  await loadMembers();
}

async function onMemberListClick(event) {
  const button = event.target.closest('button[data-action="remove"]');
  if (!button) return;
  const member = findMember(button);
  const project = memberProject();
  if (!member || !project) return;
  const self = member.user_id === session.user?.id;
  const ok = await confirmDialog(self
    ? {
        title: 'Leave project?',
        message: `You will no longer see “${project.name}” or its tasks.`,
        confirmLabel: 'Leave project',
      }
    : {
        title: 'Remove member?',
        message: `${member.name || member.email} will no longer see “${project.name}” or its tasks.`,
        confirmLabel: 'Remove',
      });
  if (!ok) return;
  setMemberError('');
  button.disabled = true;
  try {
    await projectsApi.removeMember(project.id, member.user_id);
  } catch (error) {
    button.disabled = false;
    if (error instanceof ApiError && error.status === 401 && !session.accessToken) return;
    setMemberError(error instanceof ApiError ? error.summary : 'Could not remove the member.');
    return;
  }
  if (self) {
    el.shareDialog.close('left');
    toast(`You left “${project.name}”.`, 'success');
    selectProject(null);
    await loadProjects();
    $('button[aria-current="page"]', el.projectList)?.focus();
    return;
  }
  toast(`Removed ${member.email} from “${project.name}”.`, 'success');
  await loadMembers();
}

async function onAddMember(event) {
  event.preventDefault();
  const form = el.memberAddForm;
  const projectId = state.members.projectId;
  if (!projectId) return;
  clearErrors(form);
  setMemberError('');
  const email = form.elements.email.value.trim();
  const role = form.elements.role.value;
  try {
    const member = await busy(form, () => projectsApi.addMember(projectId, email, role));
    form.elements.email.value = '';
    form.elements.email.focus();
    toast(`Added ${member?.email || email} as ${ROLE_LABELS[role]?.toLowerCase() || role}.`, 'success');
    await loadMembers();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && !session.accessToken) return;
    showErrors(form, error);
    if (error instanceof ApiError && error.status === 403) loadProjects().then(renderShareMode);
  }
}

/* ------------------------------------------------------------------ members and labels of the selected project */

/** Load the selected project's members and labels (chips, filters, the editor, the label manager). */
async function loadProjectMeta() {
  const m = state.meta;
  const seq = ++m.seq;
  const projectId = selectedProjectId();
  if (!projectId || !session.accessToken) return;
  try {
    const [members, labels] = await Promise.all([projectsApi.members(projectId), projectsApi.labels(projectId)]);
    if (seq !== m.seq) return;
    m.projectId = projectId;
    m.members = Array.isArray(members?.items) ? members.items : [];
    m.labels = Array.isArray(labels?.items) ? labels.items : [];
  } catch (error) {
    if (seq !== m.seq) return;
    // Not (or no longer) a member: loadTasks() reports it and goes back to the Inbox.
    if (error instanceof ApiError && (error.status === 404 || error.status === 401)) return;
    reportError(error, 'Could not load the project\u2019s labels and members.');
    return;
  }
  renderFilterOptions();
  renderComposerPickers();
  if (state.tasks.projectId === projectId) renderTasks();
  if (el.labelsDialog.open) renderLabels();
  if (el.commentsDialog.open) renderComments();
  if (el.editDialog.open && state.editing?.project_id === projectId && !el.editAssignees.children.length && !el.editLabels.children.length) {
    fillPickers(state.editing);
  }
}

/** The assignee and label filters offer the selected project's members and labels. */
function renderFilterOptions() {
  const f = state.tasks.filters;
  const me = session.user?.id;
  const keep = [...el.filterAssignee.options].filter((o) => ['', 'me', 'none'].includes(o.value));
  const members = state.meta.members
    .filter((m) => m.user_id !== me)
    .map((m) => {
      const option = document.createElement('option');
      option.value = m.user_id;
      option.textContent = m.name || m.email;
      return option;
    });
  el.filterAssignee.replaceChildren(...keep, ...members);
  if (f.assignee && ![...el.filterAssignee.options].some((o) => o.value === f.assignee)) f.assignee = '';
  el.filterAssignee.value = f.assignee;

  const known = new Set(state.meta.labels.map((l) => l.id));
  const before = f.labels.length;
  f.labels = f.labels.filter((id) => known.has(id));
  el.filterLabelOptions.replaceChildren(...state.meta.labels.map((l) => {
    const option = document.createElement('label');
    option.className = 'picker-option';
    const input = document.createElement('input');
    input.type = 'checkbox';
    input.name = 'label';
    input.value = l.id;
    input.checked = f.labels.includes(l.id);
    input.dataset.testid = 'filter-label-option';
    option.dataset.name = l.name;
    const chip = document.createElement('span');
    chip.className = 'chip chip-label';
    chip.textContent = l.name;
    paintChip(chip, l.color);
    option.append(input, chip);
    return option;
  }));
  show(el.filterLabelsField, state.meta.labels.length > 0);
  renderLabelFilterSummary();
  // A label filtered on was deleted: the page shown no longer matches the filters.
  if (before !== f.labels.length) {
    state.tasks.offset = 0;
    loadTasks();
  }
}

/** Assignee and label choices of the new-task form (the selected project's). */
function renderComposerPickers() {
  const f = el.taskCreateForm;
  const assigned = new Set($$('input[name="assignee_ids"]:checked', f).map((i) => i.value));
  const labelled = new Set($$('input[name="label_ids"]:checked', f).map((i) => i.value));
  el.newTaskAssigneeOptions.replaceChildren(...state.meta.members.map((m) => {
    const name = document.createElement('span');
    name.textContent = m.user_id === session.user?.id ? `${m.name || m.email} (you)` : m.name || m.email;
    const option = pickerOption('assignee_ids', m.user_id, assigned.has(m.user_id), 'new-task-assignee-option', [name]);
    option.dataset.email = m.email;
    option.dataset.name = m.name || m.email;
    return option;
  }));
  el.newTaskLabelOptions.replaceChildren(...state.meta.labels.map((l) => {
    const chip = document.createElement('span');
    chip.className = 'chip chip-label';
    chip.textContent = l.name;
    paintChip(chip, l.color);
    const option = pickerOption('label_ids', l.id, labelled.has(l.id), 'new-task-label-option', [chip]);
    option.dataset.name = l.name;
    return option;
  }));
  show(el.newTaskLabelsField, state.meta.labels.length > 0);
  renderComposerSummaries();
}

function renderComposerSummaries() {
  const names = (container) => $$('input:checked', container).map((i) => i.closest('label')?.dataset.name || '');
  const people = names(el.newTaskAssigneeOptions);
  const labels = names(el.newTaskLabelOptions);
  $('summary', el.newTaskAssignees).textContent = people.length === 0
    ? 'Nobody' : people.length === 1 ? people[0] : `${people.length} people`;
  $('summary', el.newTaskLabels).textContent = labels.length === 0
    ? 'None' : labels.length === 1 ? labels[0] : `${labels.length} labels`;
}

function renderLabelFilterSummary() {
  const chosen = state.tasks.filters.labels.map((id) => labelById(id)?.name).filter(Boolean);
  $('summary', el.filterLabels).textContent = chosen.length === 0
    ? 'Any label'
    : chosen.length === 1 ? chosen[0] : `${chosen.length} labels`;
}

/* ------------------------------------------------------------------ label manager */

function labelsAdmin() {
  return currentProject()?.role === 'admin';
}

function setLabelError(message) {
  el.labelError.textContent = message || '';
  show(el.labelError, Boolean(message));
}

function openLabels() {
  const project = currentProject();
  setLabelError('');
  clearErrors(el.labelCreateForm);
  el.labelCreateForm.reset();
  const admin = labelsAdmin();
  const name = project?.name || 'Inbox';
  el.labelsHeading.textContent = `Labels of “${name}”`;
  el.labelsIntro.textContent = admin
    ? 'Labels mark the tasks of this project. Rename, recolour or delete them here; deleting one takes it off every task.'
    : 'Only the project\u2019s admins can add, change or delete labels.';
  show(el.labelCreateForm, admin);
  renderLabels();
  el.labelsDialog.showModal();
  if (admin) el.labelCreateForm.elements.name.focus();
  else $('[data-close-dialog]', el.labelsDialog).focus();
  loadProjectMeta();
}

function renderLabels() {
  const admin = labelsAdmin();
  const labels = metaFor(selectedProjectId()) ? state.meta.labels : [];
  // A reload (a change elsewhere, or the dialog's own refresh) keeps what the user is typing.
  const drafts = new Map();
  for (const form of $$('form[data-role="edit"]', el.labelList)) {
    const id = form.closest('[data-label-id]')?.dataset.labelId;
    const draft = {};
    for (const name of ['name', 'color']) {
      const input = form.elements[name];
      if (input.value !== input.dataset.initial) draft[name] = input.value;
    }
    if (document.activeElement && form.contains(document.activeElement)) draft.focus = document.activeElement.name || null;
    if (id && Object.keys(draft).length) drafts.set(id, draft);
  }
  const focusAfter = [];
  el.labelList.replaceChildren(...labels.map((label) => {
    const item = el.labelItemTemplate.content.firstElementChild.cloneNode(true);
    item.dataset.labelId = label.id;
    item.dataset.name = label.name;
    const chip = $('[data-role="chip"]', item);
    chip.textContent = label.name;
    paintChip(chip, label.color);
    const form = $('[data-role="edit"]', item);
    if (!admin) {
      form.remove();
      return item;
    }
    chip.hidden = true;
    const valid = typeof label.color === 'string' && /^#[0-9a-fA-F]{6}$/.test(label.color);
    form.elements.name.value = label.name;
    form.elements.name.dataset.initial = label.name;
    form.elements.name.setAttribute('aria-label', `Name of the label ${label.name}`);
    form.elements.color.value = valid ? label.color.toLowerCase() : '#64748b';
    form.elements.color.dataset.initial = form.elements.color.value;
    const draft = drafts.get(label.id);
    if (draft?.name !== undefined) form.elements.name.value = draft.name;
    if (draft?.color !== undefined) form.elements.color.value = draft.color;
    if (draft?.focus && form.elements[draft.focus]) focusAfter.push(form.elements[draft.focus]);
    form.elements.color.setAttribute('aria-label', `Colour of the label ${label.name}`);
    $('[data-action="delete"]', item).setAttribute('aria-label', `Delete the label ${label.name}`);
    clearErrorOnEdit(form);
    return item;
  }));
  for (const input of focusAfter) input.focus();
  show(el.labelsEmpty, labels.length === 0);
}

function labelErrorOrReport(form, error) {
  if (error instanceof ApiError && error.status === 401 && !session.accessToken) return;
  if (error instanceof ApiError && error.status === 403) {
    el.labelsDialog.close('cancel');
    reportError(error);
    return;
  }
  if (form) showErrors(form, error);
  else setLabelError(error instanceof ApiError ? error.summary : 'Could not change the label.');
}

async function onCreateLabel(event) {
  event.preventDefault();
  const form = el.labelCreateForm;
  const projectId = selectedProjectId();
  clearErrors(form);
  setLabelError('');
  const payload = { name: form.elements.name.value.trim(), color: form.elements.color.value };
  try {
    const label = await busy(form, () => projectsApi.createLabel(projectId, payload));
    form.elements.name.value = '';
    form.elements.name.focus();
    toast(`Added the label “${label?.name ?? payload.name}”`, 'success');
    await loadProjectMeta();
  } catch (error) {
    labelErrorOrReport(form, error);
  }
}

async function onLabelSubmit(event) {
  const form = event.target.closest('form[data-role="edit"]');
  if (!form) return;
  event.preventDefault();
  const item = form.closest('[data-label-id]');
  const label = item && labelById(item.dataset.labelId);
  if (!label) return;
  clearErrors(form);
  setLabelError('');
  const changes = {};
  const name = form.elements.name.value.trim();
  if (name !== label.name) changes.name = name;
  if (form.elements.color.value !== form.elements.color.dataset.initial) changes.color = form.elements.color.value;
  if (!Object.keys(changes).length) return;
  try {
    const updated = await busy(form, () => projectsApi.updateLabel(selectedProjectId(), label.id, changes, label.version));
    toast(`Saved the label “${updated?.name ?? name}”`, 'success');
    await loadProjectMeta();
  } catch (error) {
    if (error instanceof ApiError && error.status === 412) {
      setLabelError('This label was changed elsewhere. The latest version is shown; try again.');
      await loadProjectMeta();
      return;
    }
    labelErrorOrReport(form, error);
  }
}

async function onLabelListClick(event) {
  const button = event.target.closest('button[data-action="delete"]');
  if (!button) return;
  const item = button.closest('[data-label-id]');
  const label = item && labelById(item.dataset.labelId);
  if (!label) return;
  const ok = await confirmDialog({
    title: 'Delete label?',
    message: `“${label.name}” will be taken off every task that has it.`,
    confirmLabel: 'Delete label',
  });
  if (!ok) return;
  setLabelError('');
  button.disabled = true;
  try {
    await projectsApi.removeLabel(selectedProjectId(), label.id);
    toast(`Deleted the label “${label.name}”`, 'success');
  } catch (error) {
    button.disabled = false;
    if (!(error instanceof ApiError && error.status === 404)) {
      labelErrorOrReport(null, error);
      return;
    }
  }
  await loadProjectMeta();
  refetchAfterChange();
}

/* ------------------------------------------------------------------ comments */

function setCommentError(message) {
  el.commentError.textContent = message || '';
  show(el.commentError, Boolean(message));
}

function openComments(task) {
  const c = state.comments;
  c.taskId = task.id;
  c.task = task;
  c.items = [];
  c.seq += 1;
  el.commentsHeading.textContent = `Comments on “${task.title}”`;
  el.commentsSummary.textContent = '';
  el.commentList.replaceChildren();
  setCommentError('');
  clearErrors(el.commentForm);
  el.commentForm.reset();
  show(el.commentForm, canWrite());
  el.commentsDialog.showModal();
  if (canWrite()) el.commentForm.elements.body.focus();
  else $('[data-close-dialog]', el.commentsDialog).focus();
  loadComments();
}

async function loadComments() {
  const c = state.comments;
  const taskId = c.taskId;
  if (!taskId || !el.commentsDialog.open) return;
  const seq = ++c.seq;
  el.commentList.setAttribute('aria-busy', 'true');
  try {
    const items = [];
    let cursor = null;
    // Oldest first, a page at a time (a thread is short; 10 pages is plenty).
    for (let page = 0; page < 10; page += 1) {
      const data = await commentsApi.list(taskId, { limit: 100, cursor });
      if (seq !== c.seq) return;
      if (Array.isArray(data?.items)) items.push(...data.items);
      cursor = typeof data?.next_cursor === 'string' && data.next_cursor ? data.next_cursor : null;
      if (!cursor) break;
    }
    c.items = items;
    renderComments();
    if (!cursor) updateCommentCount(taskId, items.length);
  } catch (error) {
    if (seq !== c.seq) return;
    if (error instanceof ApiError && error.status === 401 && !session.accessToken) return;
    if (error instanceof ApiError && error.status === 404) {
      el.commentsDialog.close('cancel');
      toast('That task no longer exists.', 'error');
      refetchAfterChange();
      return;
    }
    setCommentError(error instanceof ApiError ? error.summary : 'Could not load the comments.');
  } finally {
    if (seq === c.seq) el.commentList.setAttribute('aria-busy', 'false');
  }
}

function commentAuthor(comment) {
  if (!comment.author_id) return 'Deleted account';
  const member = memberById(comment.author_id);
  if (member) return member.name || member.email;
  if (comment.author_id === session.user?.id) return session.user?.name || 'You';
  return 'Former member';
}

function renderComments() {
  const c = state.comments;
  // A comment being edited keeps its text while the thread is rebuilt.
  const editing = el.commentList.querySelector('form[data-role="edit"]:not([hidden])');
  const editingId = editing?.closest('[data-comment-id]')?.dataset.commentId || null;
  const draft = editing?.elements.body.value;
  const me = session.user?.id;
  const writable = canWrite();
  const admin = currentProject()?.role === 'admin' || (isInbox(selectedProjectId()) && !currentProject());
  el.commentList.replaceChildren(...c.items.map((comment) => {
    const item = el.commentItemTemplate.content.firstElementChild.cloneNode(true);
    const own = Boolean(me) && comment.author_id === me;
    item.dataset.commentId = comment.id;
    item.dataset.authorId = comment.author_id || '';
    const author = commentAuthor(comment);
    $('[data-role="initial"]', item).textContent = initial(author);
    $('[data-role="author"]', item).textContent = own ? `${author} (you)` : author;
    $('[data-role="date"]', item).textContent = formatDateTime(comment.created_at);
    const edited = $('[data-role="edited"]', item);
    show(edited, Boolean(comment.edited_at));
    if (comment.edited_at) edited.title = `Edited ${formatDateTime(comment.edited_at)}`;
    $('[data-role="body"]', item).textContent = comment.body;

    const canEdit = own && writable;
    const canDelete = (own && writable) || admin;
    const actions = $('[data-role="actions"]', item);
    const form = $('form[data-role="edit"]', item);
    if (!canEdit) {
      $('[data-action="edit"]', actions).remove();
      form.remove();
    } else {
      clearErrorOnEdit(form);
    }
    if (!canDelete) $('[data-action="delete"]', actions).remove();
    if (!actions.children.length) actions.remove();
    if (canEdit && comment.id === editingId) startCommentEdit(item, draft);
    return item;
  }));
  const n = c.items.length;
  el.commentsSummary.textContent = n === 0
    ? (writable ? 'No comments yet. Start the conversation below.' : 'No comments yet.')
    : `${n} ${n === 1 ? 'comment' : 'comments'}`;
  show(el.commentForm, writable);
}

function findComment(node) {
  const item = node.closest('[data-comment-id]');
  return item ? state.comments.items.find((x) => x.id === item.dataset.commentId) || null : null;
}

function startCommentEdit(item, text) {
  const comment = state.comments.items.find((x) => x.id === item.dataset.commentId);
  const form = $('form[data-role="edit"]', item);
  if (!comment || !form) return;
  form.elements.body.value = text ?? comment.body;
  show(form, true);
  show($('[data-role="body"]', item), false);
  show($('[data-role="actions"]', item), false);
  form.elements.body.focus();
}

function commentErrorOrReport(form, error) {
  if (error instanceof ApiError && error.status === 401 && !session.accessToken) return;
  if (error instanceof ApiError && error.status === 403) {
    reportError(error);
    renderComments();
    return;
  }
  if (form) showErrors(form, error);
  else setCommentError(error instanceof ApiError ? error.summary : 'Could not change the comment.');
}

async function onCommentSubmit(event) {
  event.preventDefault();
  const form = el.commentForm;
  const taskId = state.comments.taskId;
  if (!taskId) return;
  clearErrors(form);
  setCommentError('');
  const body = form.elements.body.value;
  try {
    await busy(form, () => commentsApi.create(taskId, body));
    form.elements.body.value = '';
    form.elements.body.focus();
    await loadComments();
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      el.commentsDialog.close('cancel');
      toast('That task no longer exists.', 'error');
      refetchAfterChange();
      return;
    }
    commentErrorOrReport(form, error);
  }
}

async function onCommentListClick(event) {
  const button = event.target.closest('button[data-action]');
  if (!button) return;
  const item = button.closest('[data-comment-id]');
  const comment = findComment(button);
  if (!item || !comment) return;
  const action = button.dataset.action;
  if (action === 'edit') {
    startCommentEdit(item);
  } else if (action === 'cancel-edit') {
    renderCommentsAfterEdit();
  } else if (action === 'delete') {
    const ok = await confirmDialog({
      title: 'Delete comment?',
      message: 'The comment will be permanently deleted.',
      confirmLabel: 'Delete comment',
    });
    if (!ok) return;
    setCommentError('');
    try {
      await commentsApi.remove(comment.task_id, comment.id);
      toast('Comment deleted', 'success');
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) {
        commentErrorOrReport(null, error);
        return;
      }
    }
    await loadComments();
  }
}

/** Leave edit mode: rebuild the thread with no comment being edited. */
function renderCommentsAfterEdit() {
  const open = el.commentList.querySelector('form[data-role="edit"]:not([hidden])');
  if (open) open.hidden = true;
  renderComments();
}

async function onCommentEditSubmit(event) {
  const form = event.target.closest('form[data-role="edit"]');
  if (!form) return;
  event.preventDefault();
  const comment = findComment(form);
  if (!comment) return;
  clearErrors(form);
  setCommentError('');
  const body = form.elements.body.value;
  if (body === comment.body) {
    renderCommentsAfterEdit();
    return;
  }
  try {
    await busy(form, () => commentsApi.update(comment.task_id, comment.id, body, comment.version));
    form.hidden = true;
    toast('Comment saved', 'success');
    await loadComments();
  } catch (error) {
    if (error instanceof ApiError && error.status === 412) {
      form.hidden = true;
      setCommentError('This comment was changed elsewhere. The latest version is shown; edit it again.');
      await loadComments();
      return;
    }
    if (error instanceof ApiError && error.status === 404) {
      form.hidden = true;
      setCommentError('That comment no longer exists.');
      await loadComments();
      return;
    }
    commentErrorOrReport(form, error);
  }
}

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
  el.taskCreateForm.addEventListener('change', (event) => {
    if (event.target.name === 'assignee_ids' || event.target.name === 'label_ids') renderComposerSummaries();
  });
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

  el.projectList.addEventListener('click', onProjectListClick);
  el.projectCreateForm.addEventListener('submit', onCreateProject);
  el.projectShare.addEventListener('click', openShare);
  el.memberList.addEventListener('click', onMemberListClick);
  el.memberList.addEventListener('change', onMemberRoleChange);
  el.memberAddForm.addEventListener('submit', onAddMember);
  for (const button of $$('[data-close-dialog]', el.shareDialog)) {
    button.addEventListener('click', () => el.shareDialog.close('done'));
  }
  el.shareDialog.addEventListener('close', () => {
    state.members.projectId = null;
    state.members.seq += 1;
    el.projectShare.focus();
  });
  // Back to a tab that was hidden: roles and memberships may have changed meanwhile.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && session.accessToken && !el.tasksView.hidden) loadProjects();
  });

  el.editForm.addEventListener('submit', onEditSubmit);
  el.editProject.addEventListener('change', onEditProjectChange);

  el.projectLabels.addEventListener('click', openLabels);
  el.labelCreateForm.addEventListener('submit', onCreateLabel);
  el.labelList.addEventListener('submit', onLabelSubmit);
  el.labelList.addEventListener('click', onLabelListClick);
  for (const button of $$('[data-close-dialog]', el.labelsDialog)) {
    button.addEventListener('click', () => el.labelsDialog.close('done'));
  }
  el.labelsDialog.addEventListener('close', () => el.projectLabels.focus());

  el.commentForm.addEventListener('submit', onCommentSubmit);
  el.commentList.addEventListener('click', onCommentListClick);
  el.commentList.addEventListener('submit', onCommentEditSubmit);
  for (const button of $$('[data-close-dialog]', el.commentsDialog)) {
    button.addEventListener('click', () => el.commentsDialog.close('done'));
  }
  el.commentsDialog.addEventListener('close', () => {
    state.comments.taskId = null;
    state.comments.task = null;
    state.comments.seq += 1;
  });
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
  for (const form of [
    el.loginForm, el.registerForm, el.taskCreateForm, el.editForm, el.projectCreateForm, el.memberAddForm,
    el.labelCreateForm, el.commentForm,
  ]) {
    clearErrorOnEdit(form);
  }

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
