/**
 * A small line chart of the last minute of one counter, drawn on a canvas (no chart library:
 * sixty points need none). The canvas carries a text alternative with the newest value.
 */
import { h } from './dom.ts';

export function sparkline(label: string, values: number[], format: (v: number) => string, max?: number): HTMLElement {
  const width = 220,
    height = 56;
  const canvas = h('canvas', {
    width: String(width),
    height: String(height),
    role: 'img',
    'aria-label': `${label}: ${values.length ? format(values[values.length - 1]!) : 'no samples yet'}`,
  });
  const ctx = canvas.getContext('2d');
  const top = Math.max(max ?? 0, ...values, 1);
  if (ctx) {
    ctx.strokeStyle = '#c8d0da';
    ctx.strokeRect(0.5, 0.5, width - 1, height - 1);
    ctx.strokeStyle = '#1f6fb2';
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    values.forEach((v, i) => {
      const x = (i / 59) * (width - 4) + 2;
      const y = height - 3 - (v / top) * (height - 8);
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
  return h('figure', { class: 'chart' }, h('figcaption', {}, `${label} `, h('strong', {}, values.length ? format(values[values.length - 1]!) : '—')), canvas);
}
