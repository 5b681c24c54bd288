// Spend by UTC day and by model over the last 7 or 30 days (docs/console.md#what-it-shows), from GET /v1/usage, which
// answers from totals kept at settlement (docs/api.md#usage): each drawn as a chart, with the same figures as a table.
import { h, append, replace, untrusted, table, cell, say } from './dom.js';
import { api, query } from './api.js';
import { columns, rows, micros, dollars } from './chart.js';

const RANGES = [[7, 'Last 7 days'], [30, 'Last 30 days']];
const DAY_MS = 86_400_000;

export function render(main, { signal, query: params }) {
  const days = params.get('days') === '30' ? 30 : 7;
  const from = new Date(Date.now() - (days - 1) * DAY_MS).toISOString().slice(0, 10);
  const figures = h('div', { class: 'figures' }, h('p', { class: 'help' }, 'Loading…'));
  const byDay = h('div', { class: 'chart-area' });
  const byModel = h('div', { class: 'chart-area' });

  append(main, [
    h('h1', {}, 'Spend'),
    h('nav', { class: 'toolbar ranges', 'aria-label': 'Range' }, RANGES.map(([n, label]) =>
      h('a', { href: `#/spend?days=${n}`, class: 'button secondary', 'aria-current': n === days ? 'page' : undefined }, label))),
    h('p', { class: 'help' }, `What executions that ended from ${from} to today (UTC days) were charged: the actual cost, `
      + 'capped at the hold. Executions still running are not counted yet.'),
    h('section', { class: 'card', 'aria-labelledby': 'spend-total-title' }, h('h2', { id: 'spend-total-title' }, 'Total'), figures),
    h('section', { class: 'card', 'aria-labelledby': 'spend-day-title' }, h('h2', { id: 'spend-day-title' }, 'By day'), byDay),
    h('section', { class: 'card', 'aria-labelledby': 'spend-model-title' }, h('h2', { id: 'spend-model-title' }, 'By model'), byModel),
  ]);

  Promise.all([
    api(`/v1/usage${query({ from, group_by: 'day' })}`, { signal }),
    api(`/v1/usage${query({ from, group_by: 'model' })}`, { signal }),
  ]).then(([daily, models]) => {
    replace(figures,
      figure('Charged', daily.totals.charged), figure('Executions ended', String(daily.totals.executions)),
      figure('Completed', String(daily.totals.completed)), figure('Overage (not charged)', daily.totals.overage));
    const dayItems = daily.data.map((d) => ({ label: d.day, value: micros(d.charged), row: d }));
    replace(byDay, columns(`Spend by day, ${daily.from} to ${daily.to} (exclusive)`, dayItems),
      figuresTable(`Spend by day, ${daily.from} to ${daily.to} (exclusive)`, 'Day', dayItems, (d) => h('time', { datetime: d.day }, d.day)));
    const modelItems = models.data.map((m) => ({ label: m.model, value: micros(m.charged), row: m }));
    replace(byModel, modelItems.length === 0
      ? h('p', { class: 'empty' }, 'No executions ended in this range.')
      : [rows('Spend by model', modelItems), figuresTable('Spend by model', 'Model', modelItems, (m) => untrusted(m.model))]);
  }).catch((err) => { if (!signal.aborted) say(err.message, 'error'); });
}

function figure(label, value) {
  const text = /^-?\d+\.\d{6}$/.test(value) ? dollars(micros(value)) : value;
  return h('div', { class: 'figure' }, h('span', { class: 'figure-label' }, label), h('span', { class: 'figure-value', 'data-testid': label }, text));
}

/** The chart's figures as a table, with a total row summed in whole micro-dollars. */
function figuresTable(caption, first, items, name) {
  const wrap = table(caption, [first, 'Executions', 'Completed', 'Failed', 'Charged', 'Overage'], items.map(({ row }) => h('tr', {},
    cell(first, name(row)),
    cell('Executions', String(row.executions)),
    cell('Completed', String(row.completed)),
    cell('Failed', String(row.failed)),
    cell('Charged', dollars(micros(row.charged))),
    cell('Overage', dollars(micros(row.overage))))));
  const sum = (pick) => items.reduce((total, { row }) => total + pick(row), 0);
  wrap.querySelector('table').append(h('tfoot', {}, h('tr', { class: 'total' },
    cell(first, 'Total'),
    cell('Executions', String(sum((r) => r.executions))),
    cell('Completed', String(sum((r) => r.completed))),
    cell('Failed', String(sum((r) => r.failed))),
    cell('Charged', dollars(sum((r) => micros(r.charged)))),
    cell('Overage', dollars(sum((r) => micros(r.overage)))))));
  return wrap;
}
