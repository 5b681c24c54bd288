// The one way the console builds its page. Text always becomes text nodes and attributes come from a short list,
// so nothing that a model, a provider or a user wrote can become markup or script (docs/console.md#safety).
// Nothing in the console parses a string as HTML.

const ATTRIBUTES = new Set([
  'id', 'class', 'type', 'name', 'value', 'placeholder', 'for', 'role', 'tabindex', 'title', 'hidden', 'disabled',
  'required', 'autocomplete', 'spellcheck', 'inputmode', 'min', 'max', 'step', 'scope', 'colspan', 'controls',
  'alt', 'download', 'datetime', 'selected', 'checked', 'aria-label', 'aria-live', 'aria-current', 'aria-busy',
  'aria-describedby', 'aria-invalid', 'aria-hidden', 'aria-labelledby', 'data-status', 'data-testid', 'data-id', 'href', 'src',
]);

/** Creates an element: h('a', { href: '#/balance' }, 'Balance'). Children may be nodes, strings, numbers or arrays. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'on') {
      for (const [type, listener] of Object.entries(value)) el.addEventListener(type, listener);
      continue;
    }
    if (!ATTRIBUTES.has(name)) throw new Error(`attribute ${name} is not one the console sets`);
    const text = value === true ? '' : String(value);
    // Links only move between the console's own views; media only show blobs the console fetched itself.
    if (name === 'href' && !text.startsWith('#') && !text.startsWith('blob:')) throw new Error('href must be a view or a blob');
    if (name === 'src' && !text.startsWith('blob:')) throw new Error('src must be a blob');
    el.setAttribute(name, text);
  }
  append(el, children);
  return el;
}

/** Appends children as h() does. */
export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces an element's content. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// Bidirectional overrides and isolates, zero-width characters and other invisible format characters: shown as a
// visible mark, so that a key or a message cannot pass itself off as something else (docs/console.md#safety).
const INVISIBLE = /[\u00AD\u061C\u200B-\u200F\u202A-\u202E\u2060-\u2069\uFEFF]/g;

/** Text someone else wrote, isolated from the text around it, with invisible characters made visible. */
export function untrusted(value, tag = 'bdi') {
  const el = h(tag, { class: 'ut' });
  const text = String(value ?? '');
  let last = 0;
  for (const match of text.matchAll(INVISIBLE)) {
    append(el, [text.slice(last, match.index), h('span', { class: 'ctl', title: 'invisible character' }, codePoint(match[0]))]);
    last = match.index + match[0].length;
  }
  return append(el, [text.slice(last)]);
}

function codePoint(c) {
  return `U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/** JSON someone else wrote, pretty-printed as text. */
export function json(value) {
  return untrusted(JSON.stringify(value, null, 2) ?? 'null', 'pre');
}

/** A definition list from [term, description] pairs; pairs whose description is null are left out. */
export function fields(pairs) {
  return h('dl', { class: 'fields' }, pairs.filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

/** A table with a caption, column headers and rows of cells. */
export function table(caption, headers, rows) {
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, headers.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows)));
}

/** A table cell that also carries its column's name, shown beside the value on narrow screens. */
export function cell(label, ...content) {
  return h('td', { 'data-testid': label }, h('span', { class: 'cell-label', 'aria-hidden': 'true' }, label), h('span', { class: 'cell-value' }, content));
}

/** A status as a badge. */
export function status(value) {
  return h('span', { class: 'badge', 'data-status': value }, value);
}

/** "$0.014400" from the API's six-place USD string. */
export function usd(amount) {
  return amount === null || amount === undefined ? '—' : `$${amount}`;
}

/** A time from the API as the reader's local time, machine-readable underneath. */
export function time(iso) {
  if (!iso) return '—';
  const at = new Date(iso);
  return h('time', { datetime: iso, title: iso }, Number.isNaN(at.getTime()) ? String(iso) : at.toLocaleString());
}

/** A short message in the page's live region, read out by screen readers. */
export function say(message, kind = 'info') {
  const region = document.getElementById('notice');
  if (!region) return;
  replace(region, message ? h('p', { class: `notice ${kind}` }, message) : null);
}
