// Bar charts as inline SVG, built with createElementNS from numbers and text nodes only (docs/console.md#safety), and
// money as whole micro-dollars, so that sums and labels carry no floating-point error (docs/api.md#money).

const SVG = 'http://www.w3.org/2000/svg';
const ATTRIBUTES = new Set([
  'viewBox', 'role', 'aria-labelledby', 'aria-label', 'class', 'x', 'y', 'width', 'height', 'x1', 'x2', 'y1', 'y2',
  'text-anchor', 'dominant-baseline', 'preserveAspectRatio', 'focusable', 'data-label', 'data-value', 'id', 'rx',
]);

/** An SVG element with attributes from a fixed list; children are SVG nodes or text. */
function s(tag, attributes = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null) continue;
    if (!ATTRIBUTES.has(name)) throw new Error(`attribute ${name} is not one the console sets`);
    el.setAttribute(name, String(value));
  }
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

/** Whole micro-dollars from the API's decimal string ("0.031200"); 0 for anything else. */
export function micros(amount) {
  const match = /^(-?)(\d{1,9})(?:\.(\d{1,6}))?$/.exec(String(amount ?? ''));
  if (!match) return 0;
  const value = Number(match[2]) * 1_000_000 + Number((match[3] ?? '').padEnd(6, '0'));
  return match[1] ? -value : value;
}

/** "$1.234500" from whole micro-dollars, by integer division: no floating-point rounding. */
export function dollars(value) {
  const abs = Math.abs(value);
  return `${value < 0 ? '-' : ''}$${Math.floor(abs / 1_000_000)}.${String(abs % 1_000_000).padStart(6, '0')}`;
}

/**
 * Vertical bars, one per item ({label, value} with value in micro-dollars), left to right; every few labels are written
 * under the axis. Each bar carries its label and exact amount as a tooltip and for assistive technology.
 */
export function columns(title, items) {
  const [width, height, left, bottom, top] = [640, 220, 78, 26, 14];
  const max = Math.max(0, ...items.map((i) => i.value));
  const plot = height - bottom - top;
  const step = (width - left) / Math.max(1, items.length);
  const every = Math.max(1, Math.ceil(items.length / 7));
  const svg = frame(title, width, height);
  svg.append(
    s('line', { class: 'axis', x1: left, x2: width, y1: height - bottom, y2: height - bottom }),
    s('text', { class: 'tick', x: left - 6, y: top + 4, 'text-anchor': 'end' }, dollars(max)),
    s('text', { class: 'tick', x: left - 6, y: height - bottom, 'text-anchor': 'end' }, '$0'));
  items.forEach((item, i) => {
    const barHeight = max === 0 ? 0 : Math.max(item.value > 0 ? 1 : 0, Math.round((item.value / max) * plot));
    const x = left + i * step + step * 0.15;
    svg.append(s('rect', {
      class: 'bar', x: x.toFixed(1), y: height - bottom - barHeight, width: (step * 0.7).toFixed(1), height: barHeight,
      'data-label': item.label, 'data-value': dollars(item.value),
    }, s('title', {}, `${item.label}: ${dollars(item.value)}`)));
    if (i % every === 0 || i === items.length - 1) {
      svg.append(s('text', { class: 'tick', x: (x + step * 0.35).toFixed(1), y: height - 8, 'text-anchor': 'middle' }, item.label.slice(5)));
    }
  });
  return svg;
}

/** Horizontal bars, one per item, each with its label above it and its amount at its end, largest first. */
export function rows(title, items) {
  const sorted = [...items].sort((a, b) => b.value - a.value);
  const [width, row] = [640, 38];
  const height = Math.max(1, sorted.length) * row + 6;
  const max = Math.max(0, ...sorted.map((i) => i.value));
  const svg = frame(title, width, height);
  sorted.forEach((item, i) => {
    const y = i * row;
    const barWidth = max === 0 ? 0 : Math.max(item.value > 0 ? 1 : 0, Math.round((item.value / max) * (width - 130)));
    svg.append(
      s('text', { class: 'bar-label', x: 0, y: y + 13 }, item.label),
      s('rect', { class: 'bar', x: 0, y: y + 18, width: barWidth, height: 14, rx: 2, 'data-label': item.label, 'data-value': dollars(item.value) },
        s('title', {}, `${item.label}: ${dollars(item.value)}`)),
      s('text', { class: 'tick', x: barWidth + 6, y: y + 30 }, dollars(item.value)));
  });
  return svg;
}

function frame(title, width, height) {
  return s('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title, focusable: 'false', preserveAspectRatio: 'xMinYMin meet' },
    s('title', {}, title));
}
