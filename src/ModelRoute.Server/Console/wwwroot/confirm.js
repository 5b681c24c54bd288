// A confirm step in the page, not window.confirm: the button asks, and a second, explicit button does it.
import { h } from './dom.js';

/**
 * Replaces <button> with a question and two buttons; <act> runs on "yes" (it may throw: the question stays and the
 * buttons are usable again). "No" puts the original button back and focuses it.
 */
export function confirmInline(button, { question, yes, no = 'Keep it', act }) {
  const accept = h('button', { type: 'button', class: 'danger', on: { click: run } }, yes);
  const keep = h('button', { type: 'button', class: 'secondary', on: { click: back } }, no);
  const box = h('span', { class: 'confirm', role: 'group', 'aria-label': question }, h('span', { class: 'confirm-question' }, question), accept, keep);
  button.replaceWith(box);
  keep.focus();

  async function run() {
    accept.disabled = keep.disabled = true;
    try {
      await act();
    } catch {
      accept.disabled = keep.disabled = false;
    }
  }

  function back() {
    box.replaceWith(button);
    button.focus();
  }
}
