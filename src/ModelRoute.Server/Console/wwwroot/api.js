// The public API, called with the key the person signed in with (docs/console.md#the-key).
// The key lives in this tab's sessionStorage only: never a cookie, never a URL, gone when the tab closes.

const KEY = 'modelroute.console.key';
const KIND = 'modelroute.console.kind';

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  /** 'account' or 'admin'. */
  get kind() { return sessionStorage.getItem(KIND); },
  start(key, kind) {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(KIND, kind);
  },
  end() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(KIND);
  },
};

/** A refused call: the HTTP status and the API's problem (code, detail, field). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? `The gateway answered ${status}.`);
    this.status = status;
    this.code = problem?.code ?? null;
    this.field = problem?.field ?? null;
  }
}

// The API lives beside /console/, also when the gateway is served under a path prefix.
function url(path) {
  return new URL(`..${path}`, document.baseURI);
}

function request(path, { method = 'GET', body, signal, key = session.key, accept = 'application/json', lastEventId } = {}) {
  const headers = { Authorization: `Bearer ${key}`, Accept: accept };
  if (lastEventId) headers['Last-Event-ID'] = String(lastEventId);
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return fetch(url(path), {
    method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store', credentials: 'omit', redirect: 'error',
  });
}

async function refused(response, key) {
  let problem = null;
  try { problem = await response.json(); } catch { /* not a problem body */ }
  const error = new ApiError(response.status, problem);
  // A key that stops working (revoked, expired) signs the tab out; a key being tried at sign-in does not.
  if (response.status === 401 && key === session.key) window.dispatchEvent(new CustomEvent('console:unauthenticated', { detail: error.message }));
  return error;
}

/** Calls the API and answers its JSON; throws ApiError when it refuses. */
export async function api(path, options = {}) {
  const response = await request(path, options);
  if (!response.ok) throw await refused(response, options.key ?? session.key);
  return response.status === 204 ? null : response.json();
}

/** Fetches a file of the API (an artifact) as a blob. */
export async function download(path, signal) {
  const response = await request(path, { signal, accept: '*/*' });
  if (!response.ok) throw await refused(response, session.key);
  return response.blob();
}

/** A query string from the entries that have a value. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) search.set(name, value);
  const text = search.toString();
  return text ? `?${text}` : '';
}

/**
 * Reads a server-sent event stream with fetch, because EventSource cannot send an Authorization header; yields
 * {id, event, data} with data parsed as JSON, after lastEventId when given (the stream resumes there).
 * Ends when the server ends the stream or the signal aborts.
 */
export async function* events(path, { signal, lastEventId } = {}) {
  const response = await request(path, { signal, accept: 'text/event-stream', lastEventId });
  if (!response.ok) throw await refused(response, session.key);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replaceAll('\r\n', '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = parseFrame(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (frame) yield frame;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function parseFrame(text) {
  const frame = { id: null, event: 'message', data: '' };
  for (const line of text.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id') frame.id = value;
    else if (field === 'event') frame.event = value;
    else if (field === 'data') frame.data += (frame.data ? '\n' : '') + value;
  }
  if (!frame.data) return null;
  try { return { ...frame, data: JSON.parse(frame.data) }; } catch { return null; }
}
