// The operator's accounts: balance, held and available, credit, disable and enable (docs/tenancy.md).
import { h, append, replace, untrusted, table, cell, status, usd, time, say } from './dom.js';
import { api, query } from './api.js';

export function render(main, { signal }) {
  const tbody = h('tbody');
  const list = table('Accounts, newest first', ['Account', 'Status', 'Balance', 'Held', 'Available', 'Created', 'Actions'], []);
  list.querySelector('tbody').replaceWith(tbody);
  const more = h('button', { type: 'button', class: 'secondary', hidden: true, on: { click: () => page() } }, 'Load more');
  let cursor = null;
  append(main, [h('h1', {}, 'Accounts'), list, h('div', { class: 'actions' }, more)]);
  page();

  async function page() {
    more.disabled = true;
    try {
      const accounts = await api(`/v1/admin/accounts${query({ limit: 50, cursor })}`, { signal });
      if (!cursor && accounts.data.length === 0) tbody.append(h('tr', {}, h('td', { colspan: 7, class: 'empty' }, 'No accounts yet.')));
      accounts.data.forEach((a) => tbody.append(row(a)));
      cursor = accounts.next_cursor;
      more.hidden = !accounts.has_more;
    } catch (err) {
      if (!signal.aborted) say(err.message, 'error');
    } finally {
      more.disabled = false;
    }
  }

  function row(a) {
    const disabled = a.status === 'disabled';
    const tr = h('tr', { 'data-id': a.id },
      cell('Account', h('span', { class: 'mono' }, a.id), h('br'), a.name === null ? '' : untrusted(a.name)),
      cell('Status', status(a.status)),
      cell('Balance', usd(a.balance)),
      cell('Held', usd(a.held)),
      cell('Available', usd(a.available)),
      cell('Created', time(a.created_at)),
      cell('Actions', h('div', { class: 'row-actions' },
        h('button', { type: 'button', class: 'secondary', 'aria-label': `Credit ${a.name ?? a.id}`, on: { click: () => credit(a, tr) } }, 'Credit'),
        h('button', { type: 'button', class: disabled ? 'secondary' : 'danger', 'aria-label': `${disabled ? 'Enable' : 'Disable'} ${a.name ?? a.id}`,
          on: { click: (e) => toggle(a, tr, e.currentTarget) } }, disabled ? 'Enable' : 'Disable'))));
    return tr;
  }

  async function toggle(a, tr, button) {
    button.disabled = true;
    try {
      const updated = await api(`/v1/admin/accounts/${a.id}/${a.status === 'disabled' ? 'enable' : 'disable'}`, { method: 'POST', signal });
      swap(tr, row(updated), 'Disable', 'Enable');
      say(updated.status === 'disabled' ? `${label(updated)} is disabled: its keys are refused.` : `${label(updated)} is enabled again.`);
    } catch (err) {
      if (!signal.aborted) say(err.message, 'error');
      button.disabled = false;
    }
  }

  // One credit per form: its reference is fixed when the form opens, so a second click cannot credit twice.
  function credit(a, tr) {
    if (tr.nextElementSibling?.classList.contains('credit-row')) return tr.nextElementSibling.querySelector('input').focus();
    const amount = h('input', { id: `amount-${a.id}`, name: 'amount', inputmode: 'decimal', required: true, autocomplete: 'off', placeholder: '10.00' });
    const reference = h('input', { id: `reference-${a.id}`, name: 'reference', required: true, autocomplete: 'off', value: `console-${Date.now()}` });
    const form = h('form', { class: 'toolbar', 'aria-label': `Credit ${a.name ?? a.id}`, on: { submit } },
      h('div', { class: 'field' }, h('label', { for: amount.id }, 'Amount (USD)'), amount),
      h('div', { class: 'field grow' }, h('label', { for: reference.id }, 'Reference (credits are idempotent per reference)'), reference),
      h('div', { class: 'field buttons' }, h('button', { type: 'submit' }, 'Add credit'),
        h('button', { type: 'button', class: 'secondary', on: { click: () => { formRow.remove(); tr.querySelector('button').focus(); } } }, 'Close')));
    const formRow = h('tr', { class: 'credit-row' }, h('td', { colspan: 7 }, form));
    tr.after(formRow);
    amount.focus();

    async function submit(event) {
      event.preventDefault();
      try {
        await api(`/v1/admin/accounts/${a.id}/credits`, { method: 'POST', body: { amount_usd: amount.value.trim(), reference: reference.value.trim() }, signal });
        const updated = await api(`/v1/admin/accounts/${a.id}`, { signal });
        formRow.remove();
        swap(tr, row(updated), 'Credit');
        say(`Credited $${amount.value.trim()} to ${label(updated)}; balance now ${usd(updated.balance)}.`);
      } catch (err) {
        if (!signal.aborted) say(err.message, 'error');
        amount.setAttribute('aria-invalid', 'true');
        amount.focus();
      }
    }
  }
}

function swap(tr, fresh, ...focusOneOf) {
  tr.replaceWith(fresh);
  const button = [...fresh.querySelectorAll('button')].find((b) => focusOneOf.includes(b.textContent));
  button?.focus();
}

function label(a) {
  return a.name ?? a.id;
}
