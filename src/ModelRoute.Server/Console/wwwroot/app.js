// The console's shell: hash routes, the navigation for the kind of key signed in, sign-out (docs/console.md).
import { h, replace, say } from './dom.js';
import { session } from './api.js';
import * as signin from './signin.js';
import * as executions from './executions.js';
import * as execution from './execution.js';
import * as balance from './balance.js';
import * as accounts from './accounts.js';
import * as providers from './providers.js';
import * as spend from './spend.js';
import * as webhooks from './webhooks.js';
import * as keys from './keys.js';
import * as overview from './overview.js';

const ROUTES = [
  { pattern: /^#\/executions$/, view: executions, kind: 'account', section: '#/executions' },
  { pattern: /^#\/executions\/(exe_[A-Za-z0-9]+)$/, view: execution, kind: 'account', section: '#/executions' },
  { pattern: /^#\/spend$/, view: spend, kind: 'account', section: '#/spend' },
  { pattern: /^#\/balance$/, view: balance, kind: 'account', section: '#/balance' },
  { pattern: /^#\/webhooks$/, view: webhooks, kind: 'account', section: '#/webhooks' },
  { pattern: /^#\/keys$/, view: keys, kind: 'account', section: '#/keys' },
  { pattern: /^#\/accounts$/, view: accounts, kind: 'admin', section: '#/accounts' },
  { pattern: /^#\/overview$/, view: overview, kind: 'admin', section: '#/overview' },
  { pattern: /^#\/providers$/, view: providers, kind: 'admin', section: '#/providers' },
];

const NAV = {
  account: [['#/executions', 'Executions'], ['#/spend', 'Spend'], ['#/balance', 'Balance and ledger'], ['#/webhooks', 'Webhooks'], ['#/keys', 'API keys']],
  admin: [['#/accounts', 'Accounts'], ['#/overview', 'Overview'], ['#/providers', 'Providers']],
};

let current = null;

/** Draws the view the address names; the previous view's requests, streams and timers stop with its signal. */
function show(moved = false) {
  current?.abort();
  current = new AbortController();
  const main = document.getElementById('main');
  const [path, search = ''] = location.hash.split('?');
  replace(main);
  if (!session.key) {
    drawShell(null);
    signin.render(main, { signal: current.signal, done: (kind) => go(NAV[kind][0][0]) });
    return;
  }

  const route = ROUTES.find((r) => r.kind === session.kind && r.pattern.test(path));
  if (!route) {
    location.replace(NAV[session.kind][0][0]);
    return;
  }

  drawShell(route.section);
  route.view.render(main, { signal: current.signal, params: path.match(route.pattern).slice(1), query: new URLSearchParams(search) });
  if (moved) main.focus({ preventScroll: true });
}

function go(hash) {
  if (location.hash === hash) show(true);
  else location.hash = hash;
}

function drawShell(section) {
  const links = session.key ? NAV[session.kind] : [];
  replace(document.getElementById('nav'), links.length ? h('ul', {}, links.map(([href, label]) =>
    h('li', {}, h('a', { href, 'aria-current': href === section ? 'page' : undefined }, label)))) : null);
  replace(document.getElementById('who'), session.key ? [
    h('span', { class: 'kind' }, session.kind === 'admin' ? 'Operator (admin key)' : 'Account key'),
    h('button', { type: 'button', class: 'secondary', id: 'sign-out', on: { click: signOut } }, 'Sign out'),
  ] : null);
}

function signOut() {
  session.end();
  say('Signed out. The key was removed from this tab.');
  history.replaceState(null, '', location.pathname);
  show(true);
}

window.addEventListener('hashchange', () => { say(null); show(true); });
window.addEventListener('console:unauthenticated', (e) => {
  session.end();
  history.replaceState(null, '', location.pathname);
  show(true);
  say(`Signed out: ${e.detail}`, 'error');
});
document.getElementById('skip').addEventListener('click', () => document.getElementById('main').focus());
show();
