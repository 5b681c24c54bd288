// The operator's providers on this node: circuit state and calls in flight, refreshed every few seconds.
import { h, append, replace, untrusted, table, cell, status, say } from './dom.js';
import { api } from './api.js';

const REFRESH_MS = 3000;

export function render(main, { signal }) {
  const tbody = h('tbody');
  const list = table('Providers on this node', ['Provider', 'Kind', 'Circuit', 'In flight', 'Concurrency limit'], []);
  list.querySelector('tbody').replaceWith(tbody);
  append(main, [
    h('h1', {}, 'Providers'),
    h('p', { class: 'help' }, 'As this gateway node sees them: an open circuit skips the provider until a trial call succeeds. Refreshed every few seconds.'),
    list,
  ]);

  (async () => {
    while (!signal.aborted) {
      try {
        const providers = await api('/v1/admin/providers', { signal });
        replace(tbody, providers.data.map((p) => h('tr', { 'data-id': p.name },
          cell('Provider', untrusted(p.name)),
          cell('Kind', p.kind),
          cell('Circuit', status(p.circuit)),
          cell('In flight', String(p.in_flight)),
          cell('Concurrency limit', String(p.max_concurrency)))));
      } catch (err) {
        if (signal.aborted) return;
        say(err.message, 'error');
      }
      await new Promise((resolve) => setTimeout(resolve, REFRESH_MS));
    }
  })();
}
