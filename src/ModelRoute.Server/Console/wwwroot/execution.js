// One execution: status, cost, error, attempts, the timeline of its events (live), input, output, artifacts, cancel.
import { h, append, replace, untrusted, json, fields, table, cell, status, usd, time, say } from './dom.js';
import { api, ApiError, download, events } from './api.js';

const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED']);

// Only these are shown inline, each through a blob of exactly this type: a provider's content type never decides
// how the browser treats a file (docs/console.md#safety).
const INLINE = {
  'image/png': 'img', 'image/jpeg': 'img', 'image/gif': 'img', 'image/webp': 'img', 'image/avif': 'img',
  'audio/mpeg': 'audio', 'audio/wav': 'audio', 'audio/x-wav': 'audio', 'audio/ogg': 'audio', 'audio/webm': 'audio', 'audio/mp4': 'audio', 'audio/flac': 'audio',
  'video/mp4': 'video', 'video/webm': 'video', 'video/ogg': 'video',
};

export function render(main, { signal, params: [id] }) {
  const blobs = new Map();
  const details = h('div', { class: 'stack' }, h('p', { class: 'help' }, 'Loading…'));
  const timeline = h('ol', { class: 'timeline' });
  const timelineSection = h('section', { class: 'card', 'aria-labelledby': 'timeline-title' },
    h('h2', { id: 'timeline-title' }, 'Timeline'), timeline);
  append(main, [
    h('p', { class: 'crumbs' }, h('a', { href: '#/executions' }, 'Executions')),
    h('h1', {}, 'Execution ', h('span', { class: 'mono' }, id)),
    details,
    timelineSection,
  ]);
  signal.addEventListener('abort', () => blobs.forEach((url) => URL.revokeObjectURL(url)));

  let shown = null;
  let pending = null;
  load();
  follow();

  // Events replayed from the start arrive together: one read of the execution after them, not one per event.
  function refresh() {
    clearTimeout(pending);
    pending = setTimeout(load, 150);
  }

  async function load() {
    try {
      draw(await api(`/v1/executions/${id}`, { signal }));
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ApiError && err.status === 404) replace(details, h('p', {}, 'No execution of this account has this id.'));
      else say(err.message, 'error');
    }
  }

  // The execution's events from the first, then live until it ends; resumed with Last-Event-ID if the stream drops.
  async function follow() {
    let last;
    for (let tries = 0; tries < 30 && !signal.aborted; tries++) {
      try {
        for await (const frame of events(`/v1/executions/${id}/events`, { signal, lastEventId: last })) {
          last = frame.id;
          timeline.append(h('li', {}, time(frame.data.created_at), ' ', h('span', { class: 'event' }, untrusted(frame.event))));
          if (frame.data.data?.input !== undefined) draw(frame.data.data);
          else refresh();
        }
        return;
      } catch (err) {
        if (signal.aborted || (err instanceof ApiError && err.status < 500 && err.status !== 429)) return;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  // A read that was overtaken (an older state answered after a newer one) is not drawn.
  function draw(e) {
    if (shown && e.updated_at < shown.updated_at) return;
    shown = e;
    replace(details, [
      overview(e, cancel),
      e.error ? errorSection(e.error) : null,
      costSection(e.cost),
      attemptsSection(e.attempt_log),
      e.artifacts.length ? artifactsSection(e, blobs, signal) : null,
      section('Output', 'output', e.output?.text !== undefined ? untrusted(e.output.text, 'pre') : null, e.output === null ? 'No output.' : json(e.output)),
      section('Input', 'input', json(e.input)),
      e.metadata ? section('Metadata', 'metadata', json(e.metadata)) : null,
    ]);
  }

  async function cancel(button) {
    button.disabled = true;
    try {
      draw(await api(`/v1/executions/${id}/cancel`, { method: 'POST', signal }));
      say('Cancelled: its hold is released.');
    } catch (err) {
      if (!signal.aborted) say(err.message, 'error');
      button.disabled = false;
    }
  }
}

function overview(e, cancel) {
  const cancelButton = TERMINAL.has(e.status) ? null
    : h('button', { type: 'button', class: 'danger', id: 'cancel', on: { click: (ev) => cancel(ev.currentTarget) } }, 'Cancel execution');
  return h('section', { class: 'card', 'aria-labelledby': 'overview-title' },
    h('div', { class: 'card-head' }, h('h2', { id: 'overview-title' }, 'Overview'), status(e.status), cancelButton),
    fields([
      ['Model', untrusted(e.model)],
      ['Idempotency key', untrusted(e.idempotency_key)],
      ['Provider', e.provider === null ? '—' : untrusted(e.provider)],
      ['Provider job id', e.provider_job_id === null ? null : untrusted(e.provider_job_id)],
      ['Attempts', String(e.attempts)],
      ['Created', time(e.created_at)],
      ['Started', time(e.started_at)],
      ['Completed', time(e.completed_at)],
      ['Expires', time(e.expires_at)],
      ['Webhook URL', e.webhook_url === null ? null : untrusted(e.webhook_url)],
      ['Trace id', e.trace_id === null ? null : h('span', { class: 'mono' }, e.trace_id)],
    ]));
}

function errorSection(error) {
  return h('section', { class: 'card error-card', 'aria-labelledby': 'error-title' },
    h('h2', { id: 'error-title' }, 'Error'),
    fields([
      ['Code', h('span', { class: 'mono' }, error.code)],
      ['Message', untrusted(error.message)],
      ['Retryable', error.retryable ? 'yes' : 'no'],
      ['Provider', error.provider === null || error.provider === undefined ? null : untrusted(error.provider)],
      ['Provider status', error.provider_status === null || error.provider_status === undefined ? null : String(error.provider_status)],
    ]));
}

function costSection(cost) {
  return h('section', { class: 'card', 'aria-labelledby': 'cost-title' },
    h('h2', { id: 'cost-title' }, 'Cost'),
    fields([
      ['Estimated', usd(cost.estimated)],
      ['Held', usd(cost.held)],
      ['Actual', usd(cost.actual)],
      ['Overage (not charged)', cost.overage === null ? null : usd(cost.overage)],
      ['Price', Object.entries(cost.pricing).map(([k, v]) => `${k.replaceAll('_', ' ')} ${usd(v)}`).join(' · ') || '—'],
    ]));
}

function attemptsSection(log) {
  const rows = log.map((a) => h('tr', {},
    cell('#', String(a.number)),
    cell('Provider', untrusted(a.provider), ' · ', untrusted(a.provider_model)),
    cell('Outcome', status(a.outcome)),
    cell('Started', time(a.started_at)),
    cell('Latency', `${a.latency_ms} ms`),
    cell('Error', a.error ? [h('span', { class: 'mono' }, a.error.code), ': ', untrusted(a.error.message)] : '—')));
  return h('section', { class: 'card', 'aria-labelledby': 'attempts-title' },
    h('h2', { id: 'attempts-title' }, 'Attempts'),
    rows.length ? table('Attempts, in order', ['#', 'Provider', 'Outcome', 'Started', 'Latency', 'Error'], rows) : h('p', { class: 'help' }, 'None yet.'));
}

function artifactsSection(e, blobs, signal) {
  const list = h('div', { class: 'artifacts' });
  for (const artifact of e.artifacts) {
    const kind = INLINE[artifact.content_type.toLowerCase()];
    const holder = h('div', { class: 'media' }, h('p', { class: 'help' }, 'Loading…'));
    list.append(h('figure', { class: 'artifact' }, holder,
      h('figcaption', {}, untrusted(artifact.name), ` · ${artifact.content_type} · ${artifact.size_bytes} bytes`)));
    const key = `${e.id}/${artifact.name}`;
    const shown = blobs.has(key) ? Promise.resolve(blobs.get(key))
      : download(`/v1/executions/${e.id}/artifacts/${encodeURIComponent(artifact.name)}`, signal).then((blob) => {
        const url = URL.createObjectURL(new Blob([blob], { type: kind ? artifact.content_type.toLowerCase() : 'application/octet-stream' }));
        blobs.set(key, url);
        return url;
      });
    shown.then((url) => replace(holder, media(kind, url, artifact.name))).catch((err) => {
      if (!signal.aborted) replace(holder, h('p', { class: 'error' }, `Could not load it: ${err.message}`));
    });
  }
  return h('section', { class: 'card', 'aria-labelledby': 'artifacts-title' }, h('h2', { id: 'artifacts-title' }, 'Artifacts'), list);
}

function media(kind, url, name) {
  const save = h('a', { href: url, download: name, class: 'button secondary' }, 'Download');
  if (kind === 'img') return [h('img', { src: url, alt: `Artifact ${name}` }), save];
  if (kind === 'audio' || kind === 'video') return [h(kind, { src: url, controls: true, 'aria-label': `Artifact ${name}` }), save];
  return save;
}

function section(title, slug, ...content) {
  return h('section', { class: 'card', 'aria-labelledby': `${slug}-title` }, h('h2', { id: `${slug}-title` }, title), content);
}
