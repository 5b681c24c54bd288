// The account's webhook endpoints and their deliveries (docs/api.md#webhooks): create and delete an endpoint, send it a
// test event, rotate its secret (shown once), and redeliver a delivery. URLs, descriptions and errors are text.
import { h, append, replace, untrusted, fields, table, cell, status, time, say } from './dom.js';
import { api, query } from './api.js';
import { secretOnce } from './secret.js';
import { confirmInline } from './confirm.js';

const EVENTS = ['execution.completed', 'execution.failed', 'execution.cancelled', 'execution.expired', 'execution.processing'];
const DEFAULT_EVENTS = new Set(EVENTS.slice(0, 4));
const REFRESH_MS = 2000;
// Deliveries are read again every two seconds while some are pending and for a while after an action, else every
// fifteen: reads count against the key's polling allowance like any client's (docs/console.md#the-key).
const WATCH_MS = 20_000;
const IDLE_MS = 15_000;

export function render(main, { signal }) {
  const list = h('div', { class: 'endpoints' }, h('p', { class: 'help' }, 'Loading…'));
  const more = h('button', { type: 'button', class: 'secondary', hidden: true, on: { click: () => page() } }, 'Load more');
  const cards = new Map();
  let cursor = null;

  append(main, [
    h('h1', {}, 'Webhooks'),
    createForm(signal, (endpoint) => {
      list.querySelector('.empty')?.remove();
      list.prepend(card(endpoint).el);
    }),
    h('section', { 'aria-labelledby': 'endpoints-title' }, h('h2', { id: 'endpoints-title' }, 'Endpoints'), list, h('div', { class: 'actions' }, more)),
  ]);
  page().then(() => watch());

  async function page() {
    more.disabled = true;
    try {
      const endpoints = await api(`/v1/webhook-endpoints${query({ limit: 20, cursor })}`, { signal });
      if (!cursor) replace(list, endpoints.data.length === 0 ? h('p', { class: 'empty card' }, 'No endpoints yet.') : null);
      endpoints.data.forEach((e) => list.append(card(e).el));
      cursor = endpoints.next_cursor;
      more.hidden = !endpoints.has_more;
    } catch (err) {
      if (!signal.aborted) say(err.message, 'error');
    } finally {
      more.disabled = false;
    }
  }

  function card(endpoint) {
    const c = endpointCard(endpoint, signal, () => cards.delete(endpoint.id));
    cards.set(endpoint.id, c);
    c.refresh();
    return c;
  }

  async function watch() {
    while (!signal.aborted) {
      await new Promise((resolve) => setTimeout(resolve, REFRESH_MS));
      if (document.visibilityState !== 'visible') continue;
      for (const c of cards.values()) if (c.watched()) await c.refresh();
    }
  }
}

function createForm(signal, added) {
  const url = h('input', { id: 'endpoint-url', name: 'url', type: 'url', required: true, autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'endpoint-url-help' });
  const description = h('input', { id: 'endpoint-description', name: 'description', autocomplete: 'off' });
  const boxes = EVENTS.map((type) => h('input', { type: 'checkbox', id: `event-${type}`, name: 'events', value: type, checked: DEFAULT_EVENTS.has(type) }));
  const slot = h('div', { class: 'secret-slot' });
  const submit = h('button', { type: 'submit' }, 'Create endpoint');
  const form = h('form', { 'aria-labelledby': 'new-endpoint-title', on: { submit: create } },
    h('div', { class: 'toolbar' },
      h('div', { class: 'field grow' }, h('label', { for: url.id }, 'URL'), url,
        h('p', { id: 'endpoint-url-help', class: 'help' }, 'An absolute http or https address that answers a signed POST with a 2xx.')),
      h('div', { class: 'field grow' }, h('label', { for: description.id }, 'Description (optional)'), description)),
    h('fieldset', { class: 'events' }, h('legend', {}, 'Events'),
      boxes.map((box) => h('span', { class: 'check' }, box, h('label', { for: box.id }, box.value)))),
    h('div', { class: 'actions' }, submit));

  async function create(event) {
    event.preventDefault();
    submit.disabled = true;
    try {
      const body = { url: url.value.trim(), events: boxes.filter((b) => b.checked).map((b) => b.value) };
      if (description.value.trim()) body.description = description.value.trim();
      const endpoint = await api('/v1/webhook-endpoints', { method: 'POST', body, signal });
      form.reset();
      boxes.forEach((b) => { b.checked = DEFAULT_EVENTS.has(b.value); });
      added({ ...endpoint, secret: null });
      slot.replaceChildren(secretOnce({
        title: `Signing secret of ${endpoint.id}`,
        warning: 'Copy the secret now to verify this endpoint\'s webhooks: it is shown only this once.',
        secret: endpoint.secret,
        done: () => url.focus(),
      }));
      slot.querySelector('button').focus();
      say(`Endpoint ${endpoint.id} created.`);
    } catch (err) {
      if (!signal.aborted) say(err.message, 'error');
      url.setAttribute('aria-invalid', 'true');
    } finally {
      submit.disabled = false;
    }
  }

  return h('section', { class: 'card', 'aria-labelledby': 'new-endpoint-title' }, h('h2', { id: 'new-endpoint-title' }, 'New endpoint'), form, slot);
}

/** One endpoint as a card: its settings, its actions and its latest deliveries. */
function endpointCard(endpoint, signal, removed) {
  const tbody = h('tbody');
  const deliveries = table('Latest deliveries, newest first', ['Delivery', 'Event', 'Status', 'Attempts', 'Latency', 'Response', 'Created', 'Actions'], []);
  deliveries.querySelector('tbody').replaceWith(tbody);
  const details = h('div');
  const actions = h('div', { class: 'row-actions' });
  const slot = h('div', { class: 'secret-slot' });
  const el = h('article', { class: 'card endpoint', 'data-id': endpoint.id, 'aria-labelledby': `title-${endpoint.id}` },
    h('h3', { id: `title-${endpoint.id}`, class: 'endpoint-url' }, untrusted(endpoint.url)), details, actions, slot, deliveries);
  let watchUntil = Date.now() + WATCH_MS;
  let pending = false;
  let readAt = 0;
  draw(endpoint);

  function draw(e) {
    endpoint = e;
    replace(details, fields([
      ['Id', h('span', { class: 'mono' }, e.id)],
      ['Status', [status(e.status), e.disabled_reason ? [' ', untrusted(e.disabled_reason)] : '']],
      ['Events', e.events.join(', ')],
      ['Description', e.description === null ? null : untrusted(e.description)],
      ['Failing since', e.failing_since ? time(e.failing_since) : null],
      ['Previous secret valid until', e.previous_secret_expires_at ? time(e.previous_secret_expires_at) : null],
      ['Created', time(e.created_at)],
    ]));
    const label = e.id;
    replace(actions,
      e.status === 'enabled'
        ? button('Send test event', `Send a test event to ${label}`, sendTest)
        : button('Enable', `Enable ${label}`, enable),
      button('Rotate secret', `Rotate the secret of ${label}`, rotate),
      button('Delete', `Delete ${label}`, remove, 'danger'));
  }

  function button(text, label, action, kind = 'secondary') {
    return h('button', { type: 'button', class: kind, 'aria-label': label, on: { click: (ev) => action(ev.currentTarget) } }, text);
  }

  async function act(buttonEl, work) {
    buttonEl.disabled = true;
    try {
      await work();
      watchUntil = Date.now() + WATCH_MS;
    } catch (err) {
      if (!signal.aborted) say(err.message, 'error');
    } finally {
      buttonEl.disabled = false;
    }
  }

  function sendTest(b) {
    return act(b, async () => {
      const delivery = await api(`/v1/webhook-endpoints/${endpoint.id}/test`, { method: 'POST', signal });
      say(`Test event sent as delivery ${delivery.id}.`);
      await refresh();
    });
  }

  function enable(b) {
    return act(b, async () => {
      draw(await api(`/v1/webhook-endpoints/${endpoint.id}/enable`, { method: 'POST', signal }));
      say(`${endpoint.id} is enabled again.`);
      actions.querySelector('button')?.focus();
    });
  }

  function rotate(b) {
    return act(b, async () => {
      const rotated = await api(`/v1/webhook-endpoints/${endpoint.id}/rotate-secret`, { method: 'POST', signal });
      draw({ ...rotated, secret: null });
      slot.replaceChildren(secretOnce({
        title: `New signing secret of ${endpoint.id}`,
        warning: 'Copy the new secret now: it is shown only this once. The previous one keeps signing beside it until the time shown above.',
        secret: rotated.secret,
        done: () => actions.querySelector('button[aria-label^="Rotate"]')?.focus(),
      }));
      slot.querySelector('button').focus();
    });
  }

  function remove(b) {
    confirmInline(b, {
      question: `Delete ${endpoint.id}? It receives nothing more.`,
      yes: 'Yes, delete',
      act: async () => {
        try {
          await api(`/v1/webhook-endpoints/${endpoint.id}`, { method: 'DELETE', signal });
        } catch (err) {
          if (!signal.aborted) say(err.message, 'error');
          throw err;
        }
        el.remove();
        removed();
        say(`Endpoint ${endpoint.id} deleted.`);
        document.getElementById('endpoint-url')?.focus();
      },
    });
  }

  async function refresh() {
    readAt = Date.now();
    try {
      const list = await api(`/v1/webhook-endpoints/${endpoint.id}/deliveries${query({ limit: 10 })}`, { signal });
      pending = list.data.some((d) => d.status === 'pending');
      const focused = tbody.contains(document.activeElement) ? document.activeElement.getAttribute('aria-label') : null;
      replace(tbody, list.data.length === 0
        ? h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No deliveries yet.'))
        : list.data.map((d) => deliveryRow(d, redeliver)));
      if (focused) tbody.querySelector(`button[aria-label="${CSS.escape(focused)}"]`)?.focus();
    } catch (err) {
      if (!signal.aborted) say(err.message, 'error');
    }
  }

  function redeliver(delivery, b) {
    return act(b, async () => {
      const fresh = await api(`/v1/webhook-deliveries/${delivery.id}/redeliver`, { method: 'POST', signal });
      say(`Delivery ${delivery.id} sent again as ${fresh.id}.`);
      await refresh();
    });
  }

  return { el, refresh, watched: () => pending || Date.now() < watchUntil || Date.now() - readAt > IDLE_MS };
}

function deliveryRow(d, redeliver) {
  const last = d.attempt_log.at(-1);
  return h('tr', { 'data-id': d.id },
    cell('Delivery', h('span', { class: 'mono' }, d.id)),
    cell('Event', d.event_type, d.execution_id ? [h('br'), h('a', { href: `#/executions/${d.execution_id}`, class: 'mono' }, d.execution_id)] : ''),
    cell('Status', status(d.status), d.next_attempt_at ? [h('br'), h('span', { class: 'help' }, 'next '), time(d.next_attempt_at)] : ''),
    cell('Attempts', String(d.attempts)),
    cell('Latency', last ? `${last.latency_ms} ms` : '—'),
    cell('Response', d.last_status_code === null ? '—' : String(d.last_status_code), d.last_error ? [h('br'), untrusted(d.last_error)] : '', responses(d.attempt_log)),
    cell('Created', time(d.created_at)),
    cell('Actions', h('button', {
      type: 'button', class: 'secondary', 'aria-label': `Redeliver ${d.id}`, on: { click: (e) => redeliver(d, e.currentTarget) },
    }, 'Redeliver')));
}

// What the receiver answered (docs/webhooks.md#response-excerpts): the latest attempt's body, the earlier ones folded
// away. Always as text (untrusted: a text node, invisible characters marked), never as markup.
function responses(attempts) {
  const answered = attempts.map((a, i) => ({ a, n: i + 1 })).filter(({ a }) => a.response_body !== null && a.response_body !== undefined);
  if (answered.length === 0) return '';
  const last = answered.at(-1);
  const earlier = answered.slice(0, -1).reverse();
  return h('div', { class: 'responses' },
    excerpt(last.a, last.n),
    earlier.length ? h('details', {}, h('summary', {}, `Earlier responses (${earlier.length})`), earlier.map(({ a, n }) => excerpt(a, n))) : '');
}

function excerpt(attempt, n) {
  return h('div', { class: 'response' },
    h('span', { class: 'help' }, `Attempt ${n}${attempt.status_code === null ? '' : ` (${attempt.status_code})`}`,
      attempt.response_body_truncated ? ', cut at 1 KiB' : ''),
    untrusted(attempt.response_body, 'pre'));
}
