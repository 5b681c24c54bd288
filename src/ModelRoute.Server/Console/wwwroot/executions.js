// An account's executions: filters, search, cursor pages, and live status by polling the first page.
import { h, append, replace, untrusted, table, cell, status, usd, time, say } from './dom.js';
import { api, ApiError, query } from './api.js';

const STATUSES = ['PENDING', 'PROCESSING', 'AWAITING_WEBHOOK', 'COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED'];
const ENDED = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED']);
const POLL_MS = 2000;
const PAGE = 20;

export function render(main, { signal, query: params }) {
  const filters = { status: params.get('status') ?? '', model: params.get('model') ?? '', created_after: params.get('created_after') ?? '' };
  const state = { rows: new Map(), cursor: null, hasMore: false, term: '' };
  const tbody = h('tbody');
  const more = h('button', { type: 'button', class: 'secondary', hidden: true, on: { click: loadMore } }, 'Load more');
  const summary = h('p', { class: 'help', 'aria-live': 'polite' });
  const listTable = table('Executions, newest first', ['Execution', 'Status', 'Model', 'Idempotency key', 'Cost', 'Created'], []);
  listTable.querySelector('tbody').replaceWith(tbody);

  append(main, [
    h('h1', {}, 'Executions'),
    filterForm(filters),
    searchForm(),
    summary,
    listTable,
    h('div', { class: 'actions' }, more),
  ]);

  firstPage().then(() => poll());

  async function firstPage() {
    try {
      const page = await api(`/v1/executions${query({ ...filters, limit: PAGE })}`, { signal });
      page.data.forEach((e) => state.rows.set(e.id, e));
      state.cursor = page.next_cursor;
      state.hasMore = page.has_more;
      draw();
    } catch (err) {
      if (!signal.aborted) say(err.message, 'error');
    }
  }

  async function loadMore() {
    more.disabled = true;
    try {
      const page = await api(`/v1/executions${query({ ...filters, limit: PAGE, cursor: state.cursor })}`, { signal });
      page.data.forEach((e) => state.rows.set(e.id, e));
      state.cursor = page.next_cursor;
      state.hasMore = page.has_more;
      draw();
    } catch (err) {
      if (!signal.aborted) say(err.message, 'error');
    } finally {
      more.disabled = false;
    }
  }

  // Live status: the first page again every few seconds; changed rows are redrawn, new ones go on top.
  async function poll() {
    while (!signal.aborted) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      if (signal.aborted || document.visibilityState !== 'visible') continue;
      try {
        const page = await api(`/v1/executions${query({ ...filters, limit: PAGE })}`, { signal });
        const known = [...state.rows.values()];
        const fresh = page.data.filter((e) => !state.rows.has(e.id) && (known.length === 0 || e.id > known[0].id));
        const changed = page.data.filter((e) => state.rows.has(e.id) && state.rows.get(e.id).updated_at !== e.updated_at);
        if (fresh.length === 0 && changed.length === 0) continue;
        changed.forEach((e) => state.rows.set(e.id, e));
        const rows = new Map(fresh.map((e) => [e.id, e]));
        state.rows.forEach((e, id) => rows.set(id, e));
        state.rows = rows;
        draw();
      } catch (err) {
        if (signal.aborted) return;
        if (!(err instanceof ApiError) || err.status !== 429) say(err.message, 'error');
      }
    }
  }

  function draw() {
    const focusedId = document.activeElement?.closest?.('tr')?.dataset.id;
    const shown = [...state.rows.values()].filter((e) => !state.term || e.idempotency_key.includes(state.term));
    replace(tbody, shown.length ? shown.map(row) : h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'No executions to show.')));
    if (focusedId) tbody.querySelector(`tr[data-id="${CSS.escape(focusedId)}"] a`)?.focus();
    more.hidden = !state.hasMore;
    replace(summary, state.term
      ? `${shown.length} of the ${state.rows.size} executions loaded have an idempotency key containing the text searched for. `
        + (state.hasMore ? 'Load more to search further.' : '')
      : `${state.rows.size} shown${state.hasMore ? '; more with Load more' : ''}. Statuses update by themselves.`);
  }

  function searchForm() {
    const input = h('input', { id: 'search', name: 'search', type: 'search', autocomplete: 'off', spellcheck: 'false', placeholder: 'exe_… or an idempotency key' });
    const clear = h('button', { type: 'button', class: 'secondary', on: { click: () => { input.value = ''; state.term = ''; draw(); } } }, 'Clear');
    return h('form', { class: 'toolbar', role: 'search', on: { submit: (e) => { e.preventDefault(); find(input.value.trim()); } } },
      h('div', { class: 'field grow' }, h('label', { for: 'search' }, 'Find by id or idempotency key'), input),
      h('div', { class: 'field buttons' }, h('button', { type: 'submit' }, 'Find'), clear));
  }

  async function find(term) {
    if (/^exe_[A-Za-z0-9]+$/.test(term)) {
      try {
        await api(`/v1/executions/${term}`, { signal });
        location.hash = `#/executions/${term}`;
      } catch (err) {
        say(err instanceof ApiError && err.status === 404 ? 'No execution of this account has that id.' : err.message, 'error');
      }
      return;
    }

    state.term = term;
    draw();
  }
}

function row(e) {
  // Until it ends an execution holds money; one that ended without a charge released its hold.
  const cost = e.cost.actual !== null ? usd(e.cost.actual) : ENDED.has(e.status) ? '—' : `${usd(e.cost.held)} held`;
  return h('tr', { 'data-id': e.id },
    cell('Execution', h('a', { href: `#/executions/${e.id}`, class: 'mono' }, e.id)),
    cell('Status', status(e.status)),
    cell('Model', untrusted(e.model)),
    cell('Idempotency key', untrusted(e.idempotency_key)),
    cell('Cost', cost),
    cell('Created', time(e.created_at)));
}

function filterForm(filters) {
  const statusSelect = h('select', { id: 'filter-status', name: 'status' },
    h('option', { value: '' }, 'Any status'),
    STATUSES.map((s) => h('option', { value: s, selected: s === filters.status }, s)));
  const modelSelect = h('select', { id: 'filter-model', name: 'model' }, h('option', { value: '' }, 'Any model'));
  if (filters.model) modelSelect.append(h('option', { value: filters.model, selected: true }, filters.model));
  api('/v1/models').then((models) => models.data.filter((m) => m.id !== filters.model)
    .forEach((m) => modelSelect.append(h('option', { value: m.id }, m.id)))).catch(() => {});
  const after = h('input', { id: 'filter-after', name: 'created_after', type: 'datetime-local', value: toLocalInput(filters.created_after) });
  const submit = (event) => {
    event.preventDefault();
    const chosen = {
      status: statusSelect.value, model: modelSelect.value, created_after: after.value ? new Date(after.value).toISOString() : '',
    };
    location.hash = `#/executions${query(chosen)}`;
  };
  return h('form', { class: 'toolbar', 'aria-label': 'Filters', on: { submit } },
    h('div', { class: 'field' }, h('label', { for: 'filter-status' }, 'Status'), statusSelect),
    h('div', { class: 'field' }, h('label', { for: 'filter-model' }, 'Model'), modelSelect),
    h('div', { class: 'field' }, h('label', { for: 'filter-after' }, 'Created after'), after),
    h('div', { class: 'field buttons' }, h('button', { type: 'submit' }, 'Apply filters')));
}

function toLocalInput(iso) {
  const at = iso ? new Date(iso) : null;
  if (!at || Number.isNaN(at.getTime())) return undefined;
  const local = new Date(at.getTime() - at.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 16);
}
