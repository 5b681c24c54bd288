// The account's API keys (docs/tenancy.md): list, create (the secret shown once) and revoke (confirmed in the page).
import { h, append, untrusted, table, cell, status, usd, time, say } from './dom.js';
import { api, query, session } from './api.js';
import { secretOnce } from './secret.js';
import { confirmInline } from './confirm.js';

export function render(main, { signal }) {
  const tbody = h('tbody');
  const list = table('API keys, newest first (revoked ones included)', ['Key', 'Prefix', 'Status', 'Created', 'Last used', 'Expires', 'Spent', 'Actions'], []);
  list.querySelector('tbody').replaceWith(tbody);
  const more = h('button', { type: 'button', class: 'secondary', hidden: true, on: { click: () => page() } }, 'Load more');
  const name = h('input', { id: 'key-name', name: 'name', autocomplete: 'off', placeholder: 'ci, nightly, …', 'aria-describedby': 'key-name-help' });
  const create = h('button', { type: 'submit' }, 'Create key');
  const created = h('div', { class: 'secret-slot' });
  let cursor = null;

  append(main, [
    h('h1', {}, 'API keys'),
    h('section', { class: 'card', 'aria-labelledby': 'new-key-title' },
      h('h2', { id: 'new-key-title' }, 'New key'),
      h('form', { class: 'toolbar', 'aria-labelledby': 'new-key-title', on: { submit: add } },
        h('div', { class: 'field grow' }, h('label', { for: name.id }, 'Name (optional)'), name,
          h('p', { id: 'key-name-help', class: 'help' }, 'The key\'s secret is shown once, when it is made.')),
        h('div', { class: 'field buttons' }, create)),
      created),
    h('section', { class: 'card', 'aria-labelledby': 'keys-title' }, h('h2', { id: 'keys-title' }, 'Keys'), list, h('div', { class: 'actions' }, more)),
  ]);
  page();

  async function page() {
    more.disabled = true;
    try {
      const keys = await api(`/v1/api-keys${query({ limit: 50, cursor })}`, { signal });
      if (!cursor && keys.data.length === 0) tbody.append(h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No keys.')));
      keys.data.forEach((k) => tbody.append(row(k)));
      cursor = keys.next_cursor;
      more.hidden = !keys.has_more;
    } catch (err) {
      if (!signal.aborted) say(err.message, 'error');
    } finally {
      more.disabled = false;
    }
  }

  async function add(event) {
    event.preventDefault();
    create.disabled = true;
    try {
      const text = name.value.trim();
      const key = await api('/v1/api-keys', { method: 'POST', body: text ? { name: text } : {}, signal });
      name.value = '';
      tbody.querySelector('td.empty')?.parentElement.remove();
      tbody.prepend(row({ ...key, key: undefined }));
      created.replaceChildren(secretOnce({
        title: `New key ${key.id}${key.name ? ` (${key.name})` : ''}`,
        warning: 'Copy the key now: it is shown only this once and cannot be shown again. Whoever has it can spend this account\'s money.',
        secret: key.key,
        done: () => name.focus(),
      }));
      created.querySelector('button').focus();
      say(`Key ${key.id} created.`);
    } catch (err) {
      if (!signal.aborted) say(err.message, 'error');
    } finally {
      create.disabled = false;
    }
  }

  function row(k) {
    const own = isThisTab(k);
    const revoke = h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke ${k.id}` }, 'Revoke');
    revoke.addEventListener('click', () => confirmInline(revoke, {
      question: own ? 'Revoke the key this console is signed in with? You will be signed out.' : `Revoke ${k.id}? It stops working at once.`,
      yes: 'Yes, revoke',
      act: () => revokeKey(k, tr),
    }));
    const tr = h('tr', { 'data-id': k.id },
      cell('Key', h('span', { class: 'mono' }, k.id), k.name === null ? '' : [h('br'), untrusted(k.name)], own ? [h('br'), h('span', { class: 'help' }, 'this console\'s key')] : ''),
      cell('Prefix', h('span', { class: 'mono' }, k.prefix)),
      cell('Status', status(k.revoked_at ? 'revoked' : expired(k) ? 'expired' : 'active')),
      cell('Created', time(k.created_at)),
      cell('Last used', k.last_used_at ? time(k.last_used_at) : 'never'),
      cell('Expires', k.expires_at ? time(k.expires_at) : 'never'),
      cell('Spent', k.max_spend_usd ? `${usd(k.spent)} of ${usd(k.max_spend_usd)}` : usd(k.spent)),
      cell('Actions', k.revoked_at ? ['revoked ', time(k.revoked_at)] : h('div', { class: 'row-actions' }, revoke)));
    return tr;
  }

  async function revokeKey(k, tr) {
    try {
      const revoked = await api(`/v1/api-keys/${encodeURIComponent(k.id)}`, { method: 'DELETE', signal });
      const fresh = row(revoked);
      tr.replaceWith(fresh);
      fresh.querySelector('td[data-testid="Status"]').setAttribute('tabindex', '-1');
      fresh.querySelector('td[data-testid="Status"]').focus();
      say(`Key ${k.id} is revoked: the API refuses it from now on.`);
    } catch (err) {
      if (!signal.aborted) say(err.message, 'error');
      throw err;
    }
  }
}

/** The prefix the API shows ("mr_q1RQdFq…") is the start of the key this tab signed in with. */
function isThisTab(k) {
  const start = String(k.prefix ?? '').replace(/…$/, '');
  return start.length >= 6 && (session.key ?? '').startsWith(start) && !k.revoked_at;
}

function expired(k) {
  return k.expires_at && new Date(k.expires_at).getTime() <= Date.now();
}
