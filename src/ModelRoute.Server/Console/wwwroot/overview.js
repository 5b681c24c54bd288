// The operator's overview (docs/api.md#operator-overview): throughput, the webhook outbox, executions active by status
// and money held, as the store was last counted, and the providers; refreshed every few seconds while it is open.
import { h, append, replace, time, usd } from './dom.js';
import { api } from './api.js';
import { every, providerTable } from './providers.js';

const REFRESH_MS = 3000;

export function render(main, { signal }) {
  const throughput = h('div', { class: 'figures' }, h('p', { class: 'help' }, 'Loading…'));
  const store = h('div', { class: 'figures' });
  const sampled = h('p', { class: 'help', 'data-testid': 'sampled' });
  const providers = providerTable('Providers on this node');
  append(main, [
    h('h1', {}, 'Overview'),
    h('section', { class: 'card', 'aria-labelledby': 'throughput-title' },
      h('h2', { id: 'throughput-title' }, 'Throughput on this node'), throughput,
      h('p', { class: 'help' }, 'Executions that ended per second over the last minute.')),
    h('section', { class: 'card', 'aria-labelledby': 'store-title' }, h('h2', { id: 'store-title' }, 'The store'), store, sampled),
    h('section', { class: 'card', 'aria-labelledby': 'providers-title' }, h('h2', { id: 'providers-title' }, 'Providers'), providers.el),
  ]);

  every(signal, REFRESH_MS, async () => {
    const o = await api('/v1/admin/overview', { signal });
    replace(throughput, figure('Ended per second', String(o.throughput.ended_per_second)), figure('Completed per second', String(o.throughput.completed_per_second)));
    drawStore(store, sampled, o.store);
    providers.show(o.providers);
  });
}

function drawStore(store, sampled, s) {
  if (!s) {
    replace(store);
    replace(sampled, 'The store has not been counted yet: the first count is taken right after the gateway starts.');
    return;
  }

  replace(store,
    figure('Outbox backlog', String(s.outbox.backlog)),
    figure('Oldest pending delivery', age(s.outbox.oldest_age_seconds)),
    figure('Pending', String(s.executions_active.pending)),
    figure('Processing', String(s.executions_active.processing)),
    figure('Awaiting webhook', String(s.executions_active.awaiting_webhook)),
    figure('Money held', usd(s.held)),
    figure('Oldest hold', age(s.oldest_hold_age_seconds)));
  replace(sampled, 'Counted at ', time(s.sampled_at), `, for every node together; the store is counted every ${s.sample_interval_seconds} s.`);
}

function figure(label, value) {
  return h('div', { class: 'figure' }, h('span', { class: 'figure-label' }, label), h('span', { class: 'figure-value', 'data-testid': label }, value));
}

/** "—", "42 s", "5 min 3 s", "2 h 5 min". */
function age(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}
