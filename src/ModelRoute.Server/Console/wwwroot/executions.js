// An account's executions: filters, a time window, server-side search, cursor pages, and live status from the
// account's event feed (docs/console.md#search-and-live-updates).
import { h, append, replace, untrusted, table, cell, status, usd, time, say } from './dom.js';
import { api, ApiError, query } from './api.js';
import { follow } from './live.js';

const STATUSES = ['PENDING', 'PROCESSING', 'AWAITING_WEBHOOK', 'COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED'];
const ENDED = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED']);
const RANGES = [['', 'Any time'], ['1h', 'Last hour'], ['24h', 'Last 24 hours'], ['7d', 'Last 7 days'], ['custom', 'Custom']];
const RANGE_MS = { '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3 };
const PAGE = 20;
// Events arriving together are answered with one read of the first page.
const REFRESH_MS = 300;

export function render(main, { signal, query: params }) {
  const filters = {
    status: params.get('status') ?? '', model: params.get('model') ?? '', range: params.get('range') ?? '',
    created_after: params.get('created_after') ?? '', created_before: params.get('created_before') ?? '',
  };
  const term = params.get('q') ?? '';
  // Each source is one server-side list (the filters, and a search); a search by text that reads key=value asks for
  // both the idempotency key and the metadata value, and shows what either finds.
  const sources = searches(term).map((search) => ({ search, cursor: null, hasMore: false }));
  const state = { rows: new Map(), live: 'live' };
  const tbody = h('tbody');
  const more = h('button', { type: 'button', class: 'secondary', hidden: true, on: { click: loadMore } }, 'Load more');
  const summary = h('p', { class: 'help', 'aria-live': 'polite' });
  const listTable = table('Executions, newest first', ['Execution', 'Status', 'Model', 'Idempotency key', 'Cost', 'Created'], []);
  listTable.querySelector('tbody').replaceWith(tbody);

  append(main, [
    h('h1', {}, 'Executions'),
    filterForm(filters, term),
    searchForm(term),
    summary,
    listTable,
    h('div', { class: 'actions' }, more),
  ]);

  // The feed starts at the newest change when the server answers it; a change between the first read and that
  // moment is picked up by one more read a second later, when the feed is surely open.
  readFirstPages().then(() => {
    follow({ signal, onEvent: changed, onGap: scheduleRefresh, onState: (s) => { state.live = s; draw(); } });
    setTimeout(scheduleRefresh, 1000);
  });

  /** The list's parameters now: a relative window is counted back from this moment. */
  function listQuery(search, cursor) {
    const after = RANGE_MS[filters.range] ? new Date(Date.now() - RANGE_MS[filters.range]).toISOString()
      : filters.range === 'custom' ? filters.created_after : '';
    const before = filters.range === 'custom' ? filters.created_before : '';
    return query({ status: filters.status, model: filters.model, created_after: after, created_before: before, ...search, limit: PAGE, cursor });
  }

  // A search may be refused for one reading of the text (a metadata key too long, say) and answered for the other.
  async function readFirstPages() {
    const pages = await Promise.allSettled(sources.map((s) => api(`/v1/executions${listQuery(s.search)}`, { signal })));
    pages.forEach(({ status: outcome, value: page }, i) => {
      if (outcome !== 'fulfilled') return;
      page.data.forEach((e) => state.rows.set(e.id, e));
      // A refresh keeps the cursor of a list already read further down.
      if (!sources[i].loadedMore) {
        sources[i].cursor = page.next_cursor;
        sources[i].hasMore = page.has_more;
      }
    });
    const refused = pages.find((p) => p.status === 'rejected')?.reason;
    if (refused && !signal.aborted && pages.every((p) => p.status === 'rejected') && !(refused instanceof ApiError && refused.status === 429)) {
      say(refused.message, 'error');
    }
    draw();
  }

  async function loadMore() {
    more.disabled = true;
    try {
      await Promise.all(sources.filter((s) => s.hasMore).map(async (s) => {
        const page = await api(`/v1/executions${listQuery(s.search, s.cursor)}`, { signal });
        page.data.forEach((e) => state.rows.set(e.id, e));
        s.cursor = page.next_cursor;
        s.hasMore = page.has_more;
        s.loadedMore = true;
      }));
      draw();
    } catch (err) {
      if (!signal.aborted) say(err.message, 'error');
    } finally {
      more.disabled = false;
    }
  }

  // A status change: a row shown takes the new status at once; the first page is read again (soon, once for a burst),
  // which brings new executions that match the filters to the top and the rows' costs up to date.
  function changed(frame) {
    const e = state.rows.get(frame.data?.id);
    if (e && typeof frame.data.status === 'string') {
      state.rows.set(e.id, { ...e, status: frame.data.status });
      draw();
    }
    scheduleRefresh();
  }

  let refreshing = null;
  function scheduleRefresh() {
    if (refreshing || signal.aborted) return;
    refreshing = setTimeout(async () => {
      await readFirstPages();
      refreshing = null;
    }, REFRESH_MS);
    signal.addEventListener('abort', () => clearTimeout(refreshing), { once: true });
  }

  function draw() {
    const focusedId = document.activeElement?.closest?.('tr')?.dataset.id;
    const shown = [...state.rows.values()].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    replace(tbody, shown.length ? shown.map(row) : h('tr', {}, h('td', { colspan: 6, class: 'empty' }, term ? 'Nothing matches the search.' : 'No executions to show.')));
    if (focusedId) tbody.querySelector(`tr[data-id="${CSS.escape(focusedId)}"] a`)?.focus();
    const hasMore = sources.some((s) => s.hasMore);
    more.hidden = !hasMore;
    const live = { live: 'Statuses update live.', reconnecting: 'Live updates paused: reconnecting…', stopped: 'Live updates stopped.' }[state.live];
    replace(summary, `${shown.length} shown${hasMore ? '; more with Load more' : ''}. ${live}`);
  }
}

/** What the search box asks the API: nothing, an idempotency key, and a metadata value when the text reads key=value. */
function searches(term) {
  if (!term) return [{}];
  const found = [{ idempotency_key: term }];
  const pair = /^([^=]{1,40})=(.*)$/s.exec(term);
  if (pair && pair[1].trim()) found.push({ [`metadata[${pair[1].trim()}]`]: pair[2].trim() });
  return found;
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

/** The search: an execution id opens it; other text is looked up on the server (see searches()). */
function searchForm(term) {
  const input = h('input', {
    id: 'search', name: 'search', type: 'search', autocomplete: 'off', spellcheck: 'false', value: term,
    placeholder: 'exe_…, an idempotency key, or key=value', 'aria-describedby': 'search-help',
  });
  const go = (text) => {
    const current = new URLSearchParams(location.hash.split('?')[1] ?? '');
    if (text) current.set('q', text); else current.delete('q');
    const next = current.toString();
    location.hash = `#/executions${next ? `?${next}` : ''}`;
  };
  const clear = h('button', { type: 'button', class: 'secondary', on: { click: () => { input.value = ''; go(''); } } }, 'Clear');
  const submit = async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (/^exe_[A-Za-z0-9]+$/.test(text)) {
      try {
        await api(`/v1/executions/${text}`);
        location.hash = `#/executions/${text}`;
      } catch (err) {
        say(err instanceof ApiError && err.status === 404 ? 'No execution of this account has that id.' : err.message, 'error');
      }
      return;
    }
    go(text);
  };
  return h('form', { class: 'toolbar', role: 'search', on: { submit } },
    h('div', { class: 'field grow' }, h('label', { for: 'search' }, 'Find by id or idempotency key, or metadata key=value'), input,
      h('span', { id: 'search-help', class: 'help' }, 'Exact matches, with the filters above.')),
    h('div', { class: 'field buttons' }, h('button', { type: 'submit' }, 'Find'), clear));
}

function filterForm(filters, term) {
  const statusSelect = h('select', { id: 'filter-status', name: 'status' },
    h('option', { value: '' }, 'Any status'),
    STATUSES.map((s) => h('option', { value: s, selected: s === filters.status }, s)));
  const modelSelect = h('select', { id: 'filter-model', name: 'model' }, h('option', { value: '' }, 'Any model'));
  if (filters.model) modelSelect.append(h('option', { value: filters.model, selected: true }, filters.model));
  api('/v1/models').then((models) => models.data.filter((m) => m.id !== filters.model)
    .forEach((m) => modelSelect.append(h('option', { value: m.id }, m.id)))).catch(() => {});
  const range = h('select', { id: 'filter-range', name: 'range' },
    RANGES.map(([value, label]) => h('option', { value, selected: value === filters.range }, label)));
  const after = h('input', { id: 'filter-after', name: 'created_after', type: 'datetime-local', value: toLocalInput(filters.created_after) });
  const before = h('input', { id: 'filter-before', name: 'created_before', type: 'datetime-local', value: toLocalInput(filters.created_before) });
  const custom = h('div', { class: 'custom-range', hidden: filters.range !== 'custom' },
    h('div', { class: 'field' }, h('label', { for: 'filter-after' }, 'Created after'), after),
    h('div', { class: 'field' }, h('label', { for: 'filter-before' }, 'Created before'), before));
  range.addEventListener('change', () => { custom.hidden = range.value !== 'custom'; });
  const submit = (event) => {
    event.preventDefault();
    const isCustom = range.value === 'custom';
    const chosen = {
      status: statusSelect.value, model: modelSelect.value, range: range.value,
      created_after: isCustom && after.value ? new Date(after.value).toISOString() : '',
      created_before: isCustom && before.value ? new Date(before.value).toISOString() : '',
      q: term,
    };
    location.hash = `#/executions${query(chosen)}`;
  };
  return h('form', { class: 'toolbar', 'aria-label': 'Filters', on: { submit } },
    h('div', { class: 'field' }, h('label', { for: 'filter-status' }, 'Status'), statusSelect),
    h('div', { class: 'field' }, h('label', { for: 'filter-model' }, 'Model'), modelSelect),
    h('div', { class: 'field' }, h('label', { for: 'filter-range' }, 'Created'), range),
    custom,
    h('div', { class: 'field buttons' }, h('button', { type: 'submit' }, 'Apply filters')));
}

function toLocalInput(iso) {
  const at = iso ? new Date(iso) : null;
  if (!at || Number.isNaN(at.getTime())) return undefined;
  const local = new Date(at.getTime() - at.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 16);
}
