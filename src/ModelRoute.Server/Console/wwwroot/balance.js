// An account's money: balance, held and available, and the ledger in cursor pages (docs/api.md#money).
import { h, append, untrusted, table, cell, usd, time, say } from './dom.js';
import { api, query } from './api.js';

export function render(main, { signal }) {
  const figures = h('div', { class: 'figures' }, h('p', { class: 'help' }, 'Loading…'));
  const tbody = h('tbody');
  const ledger = table('Ledger, newest first', ['Entry', 'Kind', 'Amount', 'Balance after', 'Held after', 'Execution', 'Reference', 'When'], []);
  ledger.querySelector('tbody').replaceWith(tbody);
  const more = h('button', { type: 'button', class: 'secondary', hidden: true, on: { click: () => page() } }, 'Load more');
  let cursor = null;

  append(main, [
    h('h1', {}, 'Balance and ledger'),
    h('section', { class: 'card', 'aria-labelledby': 'balance-title' }, h('h2', { id: 'balance-title' }, 'Balance'), figures),
    h('section', { class: 'card', 'aria-labelledby': 'ledger-title' }, h('h2', { id: 'ledger-title' }, 'Ledger'), ledger, h('div', { class: 'actions' }, more)),
  ]);

  api('/v1/balance', { signal }).then((b) => figures.replaceChildren(
    figure('Balance', b.balance), figure('Held', b.held), figure('Available', b.available),
  )).catch((err) => { if (!signal.aborted) say(err.message, 'error'); });
  page();

  async function page() {
    more.disabled = true;
    try {
      const list = await api(`/v1/ledger${query({ limit: 50, cursor })}`, { signal });
      if (!cursor && list.data.length === 0) tbody.append(h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No entries yet.')));
      list.data.forEach((entry) => tbody.append(row(entry)));
      cursor = list.next_cursor;
      more.hidden = !list.has_more;
    } catch (err) {
      if (!signal.aborted) say(err.message, 'error');
    } finally {
      more.disabled = false;
    }
  }
}

function figure(label, amount) {
  return h('div', { class: 'figure' }, h('span', { class: 'figure-label' }, label), h('span', { class: 'figure-value', 'data-testid': label }, usd(amount)));
}

function row(entry) {
  return h('tr', {},
    cell('Entry', h('span', { class: 'mono' }, entry.id)),
    cell('Kind', entry.kind),
    cell('Amount', usd(entry.amount)),
    cell('Balance after', usd(entry.balance)),
    cell('Held after', usd(entry.held)),
    cell('Execution', entry.execution_id ? h('a', { href: `#/executions/${entry.execution_id}`, class: 'mono' }, entry.execution_id) : '—'),
    cell('Reference', entry.reference === null ? '—' : untrusted(entry.reference)),
    cell('When', time(entry.created_at)));
}
