// A secret the API shows only once (a new API key, a webhook signing secret): shown with a copy button until the
// person says they have it, then dropped from the page and from memory (docs/console.md#what-it-shows).
import { h, say } from './dom.js';

/**
 * A panel that shows <secret> once under <title> with <warning>; `done` is called after the panel has removed itself,
 * to move the focus back to where the person was.
 */
export function secretOnce({ title, warning, secret, done }) {
  let value = secret;
  const code = h('code', { class: 'secret-value mono', 'data-testid': 'secret' }, value);
  const panel = h('div', { class: 'secret-once', role: 'group', 'aria-label': title },
    h('p', { class: 'secret-title' }, title),
    h('p', { class: 'secret-warning' }, warning),
    code,
    h('div', { class: 'row-actions' },
      h('button', { type: 'button', on: { click: copy } }, 'Copy'),
      h('button', { type: 'button', class: 'secondary', on: { click: hide } }, 'Done, hide it')));

  async function copy() {
    try {
      await navigator.clipboard.writeText(value);
      say('Copied to the clipboard.');
    } catch {
      // The clipboard can be refused (an insecure origin, a denied permission): the text can still be selected.
      window.getSelection()?.selectAllChildren(code);
      say('The browser did not allow copying: the secret is selected, copy it with the keyboard.', 'error');
    }
  }

  function hide() {
    value = null;
    panel.remove();
    say('The secret is no longer shown; it cannot be shown again.');
    done?.();
  }

  return panel;
}
