// Live updates: the change feed (GET /api/v1/tasks/events, Server-Sent Events).
//
// EventSource cannot send an Authorization header, so the stream is read with fetch()
// and a ReadableStream reader, and parsed here. After a drop the feed reconnects (after
// the server's `retry:` hint, growing on repeated failures) and sends `Last-Event-ID`, so
// the server replays what was missed, or answers `reset` when that is no longer kept.

import { ApiError, openStream } from './api.js';

const MAX_DELAY_MS = 30000;

/** One parsed SSE event: `{ id, event, data }` (data joined over its lines). */
function parseBlock(block) {
  const event = { id: null, event: 'message', data: [], retry: null };
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'id') event.id = value;
    else if (field === 'event') event.event = value;
    else if (field === 'data') event.data.push(value);
    else if (field === 'retry' && /^\d+$/.test(value)) event.retry = Number(value);
  }
  return { ...event, data: event.data.join('\n') };
}

/**
 * Start following the feed. Callbacks:
 *   onChange(type, data)  a task.*, comment.*, label.* or member.* event
 *                         (created / updated / deleted; added / updated / removed)
 *   onReset()             events were missed for good: refetch everything
 *   onEnd(reason)         the server ended the stream for good ("revoked")
 * Returns `{ stop() }`.
 */
export function startLiveFeed({ onChange, onReset, onEnd }) {
  const controller = new AbortController();
  let lastEventId = null;
  let delay = 2000;
  let failures = 0;
  let stopped = false;

  const dispatch = (event) => {
    if (event.retry !== null) delay = event.retry;
    if (event.id) lastEventId = event.id;
    if (event.event === 'message' || !event.data) return null;
    let data = null;
    try {
      data = JSON.parse(event.data);
    } catch {
      return null;
    }
    if (event.event === 'end') return data?.reason || 'unknown';
    if (event.event === 'reset') onReset();
    else if (/^(task|comment|label|member)\./.test(event.event)) onChange(event.event, data);
    return null;
  };

  const readOnce = async () => {
    const headers = lastEventId ? { 'Last-Event-ID': lastEventId } : {};
    const response = await openStream('/tasks/events', { headers, signal: controller.signal });
    failures = 0;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return null;
      buffer += value.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const reason = dispatch(parseBlock(block));
        if (reason) return reason;
      }
    }
  };

  const run = async () => {
    // A first connection has nothing to replay: the page has just fetched its tasks.
    while (!stopped) {
      let reason = null;
      try {
        reason = await readOnce();
      } catch (error) {
        if (stopped) return;
        failures += 1;
        // Signed out (the API client has already handled it): stop following.
        if (error instanceof ApiError && error.status === 401) return;
      }
      if (stopped) return;
      if (reason === 'revoked') {
        onEnd(reason);
        return;
      }
      const wait = Math.min(MAX_DELAY_MS, delay * 2 ** Math.min(failures, 4));
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  };

  run();
  return {
    stop() {
      stopped = true;
      controller.abort();
    },
  };
}
