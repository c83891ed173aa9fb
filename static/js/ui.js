// Small DOM helpers shared by the views. Everything user-supplied is written
// with textContent; nothing here builds HTML from strings.

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

export function show(el, visible = true) {
  if (el) el.hidden = !visible;
}

/** Normalise a server field name ("title", "/title", "body.title") to an input name. */
function fieldKey(field) {
  const parts = String(field || '').split(/[./]/).filter(Boolean);
  return parts.length ? parts[parts.length - 1] : '';
}

export function clearErrors(form) {
  for (const el of $$('[data-error-for]', form)) el.textContent = '';
  for (const el of $$('[aria-invalid="true"]', form)) el.removeAttribute('aria-invalid');
  const formError = $('[data-form-error]', form);
  if (formError) {
    formError.textContent = '';
    formError.hidden = true;
  }
}

/** Once the user edits a field, hide the error shown for it. */
export function clearErrorOnEdit(form) {
  const handler = (event) => {
    const input = event.target;
    if (!input || !input.name) return;
    const slot = form.querySelector(`[data-error-for="${CSS.escape(input.name)}"]`);
    if (slot) slot.textContent = '';
    input.removeAttribute('aria-invalid');
  };
  form.addEventListener('input', handler);
  form.addEventListener('change', handler);
}

/**
 * Show an ApiError (or any Error) inside a form: each `errors[]` entry next to
 * its input, anything that does not match an input in the form-level slot.
 */
export function showErrors(form, error) {
  clearErrors(form);
  const leftovers = [];
  let firstInvalid = null;
  const fieldErrors = Array.isArray(error?.errors) ? error.errors : [];

  for (const { field, message } of fieldErrors) {
    const key = fieldKey(field);
    const slot = key ? form.querySelector(`[data-error-for="${CSS.escape(key)}"]`) : null;
    if (!slot) {
      leftovers.push(field ? `${field}: ${message}` : message);
      continue;
    }
    slot.textContent = slot.textContent ? `${slot.textContent} ${message}` : message;
    const input = form.elements.namedItem(key);
    if (input && typeof input.setAttribute === 'function') {
      input.setAttribute('aria-invalid', 'true');
      firstInvalid ??= input;
    }
  }

  let formMessage = leftovers.join(' ');
  if (!fieldErrors.length) formMessage = error?.summary || error?.message || 'Something went wrong.';
  const formError = $('[data-form-error]', form);
  if (formMessage && formError) {
    formError.textContent = formMessage;
    formError.hidden = false;
  }
  if (firstInvalid && typeof firstInvalid.focus === 'function') firstInvalid.focus();
}

/** Disable a form's submit button while `work` runs. */
export async function busy(form, work) {
  const buttons = $$('button[type="submit"]', form);
  form.setAttribute('aria-busy', 'true');
  for (const b of buttons) b.disabled = true;
  try {
    return await work();
  } finally {
    form.removeAttribute('aria-busy');
    for (const b of buttons) b.disabled = false;
  }
}

const toastRegion = () => document.getElementById('toasts');

/** Transient notification. kind: "info" | "success" | "error". */
export function toast(message, kind = 'info') {
  const region = toastRegion();
  if (!region) return;
  const item = document.createElement('div');
  item.className = `toast toast-${kind}`;
  item.dataset.testid = 'toast';
  item.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  const text = document.createElement('span');
  text.textContent = message;
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'toast-close';
  close.setAttribute('aria-label', 'Dismiss');
  close.textContent = '×';
  item.append(text, close);
  region.append(item);

  const dismiss = () => {
    item.classList.add('toast-leaving');
    setTimeout(() => item.remove(), 200);
  };
  close.addEventListener('click', dismiss);
  setTimeout(dismiss, kind === 'error' ? 7000 : 3500);
  while (region.children.length > 4) region.firstElementChild.remove();
}

/** Promise-based replacement for window.confirm() using the #confirm-dialog. */
export function confirmDialog({ title = 'Are you sure?', message = '', confirmLabel = 'Delete' } = {}) {
  const dialog = document.getElementById('confirm-dialog');
  $('#confirm-heading', dialog).textContent = title;
  $('#confirm-message', dialog).textContent = message;
  $('#confirm-ok', dialog).textContent = confirmLabel;
  return new Promise((resolve) => {
    const onClose = () => {
      dialog.removeEventListener('close', onClose);
      resolve(dialog.returnValue === 'confirm');
    };
    dialog.addEventListener('close', onClose);
    dialog.returnValue = '';
    dialog.showModal();
    $('#confirm-cancel', dialog).focus();
  });
}

export function initConfirmDialog() {
  const dialog = document.getElementById('confirm-dialog');
  $('#confirm-ok', dialog).addEventListener('click', () => dialog.close('confirm'));
  $('#confirm-cancel', dialog).addEventListener('click', () => dialog.close('cancel'));
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

const dateFormat = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const dayFormat = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' });

const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
});

/** Human date and time for an RFC 3339 timestamp (local time). */
export function formatDateTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : dateTimeFormat.format(d);
}

/**
 * Colour a chip with a "#rrggbb" background (CSSOM, allowed by the page's CSP) and a
 * readable text colour; an invalid or missing colour leaves the default chip style.
 */
export function paintChip(chip, color) {
  const valid = typeof color === 'string' && /^#[0-9a-fA-F]{6}$/.test(color);
  chip.style.backgroundColor = valid ? color : '';
  chip.style.borderColor = valid ? color : '';
  if (!valid) {
    chip.style.color = '';
    return;
  }
  const n = Number.parseInt(color.slice(1), 16);
  const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  // Perceived brightness (ITU-R BT.601): dark text on light colours.
  chip.style.color = (r * 299 + g * 587 + b * 114) / 1000 > 150 ? '#111827' : '#ffffff';
}

/** Human date for an RFC 3339 timestamp (local time). */
export function formatDate(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : dateFormat.format(d);
}

/** "YYYY-MM-DD" of a due date as stored (UTC calendar day); '' if none. */
export function dueDay(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().slice(0, 10);
}

/** Format a "YYYY-MM-DD" calendar day for display. */
export function formatDay(day) {
  if (!day) return '';
  const d = new Date(`${day}T00:00:00Z`);
  return Number.isNaN(d.getTime()) ? day : dayFormat.format(d);
}

/** The value of an <input type="date"> as an RFC 3339 timestamp (noon UTC), or null. */
export function dayToTimestamp(day) {
  return day ? `${day}T12:00:00Z` : null;
}

/** Today's local calendar day as "YYYY-MM-DD". */
export function today() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export function initial(name) {
  const trimmed = String(name || '').trim();
  return trimmed ? Array.from(trimmed)[0].toUpperCase() : '?';
}
