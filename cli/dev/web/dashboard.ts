// The local dashboard's script: polls /dashboard/state every second and draws it. Only erasable
// TypeScript (Node strips the types before serving), no imports.

interface Instance { pid?: number; state: string; inFlight: number; revision: string; coldStartMs?: number }
interface Bot {
  name: string;
  revision: string;
  instances: Instance[];
  inFlight: number;
  held: number;
  lastError?: string;
  scale: { minScale: number; maxScale: number; target: number; containerConcurrency: number; scaleDownDelayMs: number };
  coldStarts: { at: string; ms: number }[];
}
interface Sample { t: number; bots: Record<string, { ready: number; starting: number; draining: number; inFlight: number; held: number }> }
interface State { bots: Bot[]; timeline: Sample[]; deliveries: Record<string, Record<string, number>>; pending: number; deadLetters: number; sockets: number }

const SERIES: [keyof Sample['bots'][string], string][] = [
  ['ready', '#2f6fed'],
  ['starting', '#f0a500'],
  ['inFlight', '#2e9e5b'],
  ['held', '#c0392b'],
];

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

function card(label: string, value: string | number, id: string): HTMLElement {
  return el('div', { className: 'card', id }, el('b', {}, String(value)), label);
}

function chart(canvas: HTMLCanvasElement, name: string, samples: Sample[]): void {
  const w = (canvas.width = canvas.clientWidth * devicePixelRatio);
  const h = (canvas.height = canvas.clientHeight * devicePixelRatio);
  const ctx = canvas.getContext('2d');
  if (!ctx || samples.length < 2) return;
  const values = samples.map((s) => s.bots[name]);
  const max = Math.max(2, ...values.flatMap((v) => (v ? SERIES.map(([k]) => v[k]) : [0])));
  ctx.clearRect(0, 0, w, h);
  ctx.lineWidth = 2 * devicePixelRatio;
  for (const [key, color] of SERIES) {
    ctx.strokeStyle = color;
    ctx.beginPath();
    values.forEach((v, i) => {
      const x = (i / (values.length - 1)) * w;
      const y = h - ((v?.[key] ?? 0) / max) * (h - 6) - 3;
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
}

function botPanel(bot: Bot, samples: Sample[]): HTMLElement {
  const ready = bot.instances.filter((i) => i.state === 'ready').length;
  const canvas = el('canvas', { className: 'chart' });
  canvas.dataset.bot = bot.name;
  const legend = el('div', { className: 'legend' }, ...SERIES.map(([k, c]) => el('span', {}, Object.assign(el('i'), { style: `background:${c}` }), k)));
  const colds = el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'cold start'), el('th', {}, 'ms'))), el('tbody', {}, ...bot.coldStarts.slice(-8).reverse().map((c) => el('tr', {}, el('td', {}, new Date(c.at).toLocaleTimeString()), el('td', {}, String(c.ms))))));
  const s = bot.scale;
  const panel = el(
    'section',
    { className: 'bot' },
    el('h2', {}, bot.name, el('small', {}, `${bot.revision} · instances ${ready}/${bot.instances.length} · in flight ${bot.inFlight} · waiting ${bot.held} · min ${s.minScale} max ${s.maxScale || '∞'} target ${s.target}`)),
    el('div', { className: 'row' }, el('div', {}, canvas, legend), colds),
  );
  panel.dataset.bot = bot.name;
  panel.dataset.instances = String(ready);
  if (bot.lastError) panel.append(el('div', { className: 'error' }, bot.lastError));
  requestAnimationFrame(() => chart(canvas, bot.name, samples));
  return panel;
}

async function refresh(): Promise<void> {
  const res = await fetch('/dashboard/state', { cache: 'no-store' });
  if (!res.ok) return;
  const state = (await res.json()) as State;
  const summary = document.getElementById('summary')!;
  summary.replaceChildren(
    card('bots', state.bots.length, 'bots-count'),
    card('instances', state.bots.reduce((n, b) => n + b.instances.length, 0), 'instances-count'),
    card('events pending', state.pending, 'pending-count'),
    card('dead letters', state.deadLetters, 'dead-count'),
    card('chat sockets', state.sockets, 'sockets-count'),
  );
  document.getElementById('bots')!.replaceChildren(...state.bots.map((b) => botPanel(b, state.timeline)));
  const rows = Object.entries(state.deliveries).map(([route, r]) => el('tr', {}, el('td', {}, route), ...['delivered', 'retry', 'dead-lettered', 'dead'].map((k) => el('td', {}, String(r[k] ?? 0)))));
  document.querySelector('#deliveries tbody')!.replaceChildren(...rows);
  document.body.dataset.updated = String(Date.now());
}

void refresh();
setInterval(() => void refresh(), 1000);
