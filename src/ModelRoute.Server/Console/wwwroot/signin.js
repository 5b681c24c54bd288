// Sign-in: the key is checked against the API, then kept in this tab's sessionStorage (docs/console.md#the-key).
import { h, replace } from './dom.js';
import { api, ApiError, session } from './api.js';

export function render(main, { done }) {
  const input = h('input', {
    id: 'key', name: 'key', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': 'key-help',
  });
  const button = h('button', { type: 'submit' }, 'Sign in');
  const error = h('p', { class: 'error', role: 'alert', id: 'sign-in-error' });
  const form = h('form', { class: 'card sign-in', 'aria-labelledby': 'sign-in-title', on: { submit } },
    h('h1', { id: 'sign-in-title' }, 'Sign in'),
    h('label', { for: 'key' }, 'API key or admin key'),
    input,
    h('p', { id: 'key-help', class: 'help' },
      'An API key (mr_…) shows its account; the admin key shows the operator\'s view. The key is kept only in this '
      + 'browser tab and sent to the gateway\'s API; closing the tab or signing out forgets it.'),
    button,
    error,
    // The one link out of the console's views: a fixed path to the gateway's own API reference (docs/api.md#openapi-and-the-reference-page).
    h('p', { class: 'help' }, Object.assign(document.createElement('a'), { href: '/docs/', textContent: 'API reference' }), ': every endpoint, with its OpenAPI document.'));
  main.append(form);
  input.focus();

  async function submit(event) {
    event.preventDefault();
    const key = input.value.trim();
    button.disabled = true;
    replace(error);
    try {
      const kind = await identify(key);
      session.start(key, kind);
      done(kind);
    } catch (err) {
      replace(error, err instanceof ApiError && err.status === 401 ? 'The gateway did not accept this key.' : err.message);
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    } finally {
      button.disabled = false;
    }
  }
}

/** 'account' when the key reads a balance; 'admin' when it is refused there as the wrong kind and reads the accounts. */
async function identify(key) {
  try {
    await api('/v1/balance', { key });
    return 'account';
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 403 || err.code !== 'FORBIDDEN') throw err;
  }

  await api('/v1/admin/accounts?limit=1', { key });
  return 'admin';
}
