// The operator's providers on this node: circuit, calls in flight, error rate and latency of the last five minutes
// (docs/api.md#provider-health), refreshed every few seconds.
import { h, append, replace, untrusted, table, cell, status, say } from './dom.js';
import { api } from './api.js';

const REFRESH_MS = 3000;

export function render(main, { signal }) {
  const view = providerTable('Providers on this node');
  const throughput = h('p', { class: 'help', 'data-testid': 'throughput' });
  append(main, [
    h('h1', {}, 'Providers'),
    h('p', { class: 'help' }, 'As this gateway node sees them: an open circuit skips the provider until a trial call succeeds. '
      + 'Calls, error rate and latency cover the last five minutes. Refreshed every few seconds.'),
    view.el,
    throughput,
  ]);

  every(signal, REFRESH_MS, async () => {
    const providers = await api('/v1/admin/providers', { signal });
    view.show(providers.data);
    replace(throughput, throughputText(providers.throughput));
  });
}

/** Runs <work> now and then every <ms> until <signal> aborts; a failure is said and the next round tries again. */
export function every(signal, ms, work) {
  (async () => {
    while (!signal.aborted) {
      try {
        await work();
      } catch (err) {
        if (signal.aborted) return;
        say(err.message, 'error');
      }
      await new Promise((resolve) => setTimeout(resolve, ms));
    }
  })();
}

/** A table of providers that can be redrawn with fresh figures. */
export function providerTable(caption) {
  const tbody = h('tbody');
  const el = table(caption, ['Provider', 'Kind', 'Circuit', 'In flight', 'Concurrency limit', 'Calls (5 min)', 'Error rate', 'Latency p50 / p95'], []);
  el.querySelector('tbody').replaceWith(tbody);
  return {
    el,
    show: (providers) => replace(tbody, providers.map((p) => h('tr', { 'data-id': p.name },
      cell('Provider', untrusted(p.name)),
      cell('Kind', p.kind),
      cell('Circuit', status(p.circuit)),
      cell('In flight', String(p.in_flight)),
      cell('Concurrency limit', String(p.max_concurrency)),
      cell('Calls (5 min)', String(p.recent_calls)),
      cell('Error rate', p.error_rate === null ? '—' : percent(p.error_rate)),
      cell('Latency p50 / p95', p.latency_ms === null ? '—' : `${p.latency_ms.p50} / ${p.latency_ms.p95} ms`)))),
  };
}

/** "0.8 ended/s (0.7 completed/s) over the last 60 s on this node". */
export function throughputText(t) {
  return `Throughput: ${t.ended_per_second} executions ended per second (${t.completed_per_second} completed) over the last ${t.window_seconds} s on this node.`;
}

function percent(rate) {
  return `${(Math.round(rate * 1000) / 10).toFixed(1)}%`;
}
