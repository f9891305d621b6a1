// The local dashboard's script (DESIGN §9): polls /dashboard/state twice a second and shows, per bot,
// instances over time, requests in flight and waiting, cold starts, events routed and dead letters.
// Only erasable TypeScript (Node strips the types before serving), no imports. Panels are made once
// per bot and updated in place; every figure is also a data-* attribute, so tests read what people see.

interface InstanceView { pid?: number; state: string; inFlight: number; revision: string; coldStartMs?: number }
interface Counts { ready: number; starting: number; draining: number; inFlight: number; held: number }
interface BotView {
  name: string;
  revision: string;
  instances: InstanceView[];
  inFlight: number;
  held: number;
  lastError?: string;
  scale: { minScale: number; maxScale: number; target: number; containerConcurrency: number; scaleDownDelayMs: number };
  coldStarts: { at: string; ms: number }[];
}
interface Sample { t: number; bots: Record<string, Counts> }
interface DashboardState {
  bots: BotView[];
  timeline: Sample[];
  deliveries: Record<string, Record<string, number>>;
  /** Route id → the bot it delivers to (or answers for). */
  routes?: Record<string, string>;
  pending: number;
  deadLetters: number;
  sockets: number;
}
interface Panel {
  root: HTMLElement;
  settings: HTMLElement;
  stats: Record<string, HTMLElement>;
  canvas: HTMLCanvasElement;
  instances: HTMLTableSectionElement;
  coldStarts: HTMLTableSectionElement;
  error: HTMLElement;
}

const POLL_MS = 500;
const CHART_W = 720;
const CHART_H = 170;
/** What the chart spans at most (the host keeps 600 samples, one every 250 ms), and at least. */
const WINDOW_MS = 150_000;
const MIN_SPAN_MS = 30_000;
/** Drawn in this order: the instance count last, on top. */
const SERIES: { key: keyof Counts; label: string; color: string }[] = [
  { key: 'draining', label: 'draining', color: '#98a1b0' },
  { key: 'held', label: 'waiting', color: '#c0392b' },
  { key: 'inFlight', label: 'in flight', color: '#2e9e5b' },
  { key: 'starting', label: 'starting', color: '#f0a500' },
  { key: 'ready', label: 'ready instances', color: '#2f6fed' },
];
const OUTCOMES = ['delivered', 'retry', 'dead-lettered', 'dead'];
const STATS: [field: string, label: string][] = [
  ['ready', 'ready'],
  ['starting', 'starting'],
  ['draining', 'draining'],
  ['in-flight', 'in flight'],
  ['waiting', 'waiting'],
  ['cold-starts', 'cold starts'],
  ['events', 'events delivered'],
  ['dead-letters', 'dead letters'],
];

let samples: Sample[] = [];
let refreshes = 0;
const panels = new Map<string, Panel>();

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

/** `in-flight` → `inFlight`, as the DOM names data-in-flight in `dataset`. */
function camel(field: string): string {
  return field.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

function setField(holder: HTMLElement, root: HTMLElement, field: string, value: number, alert = false): void {
  const b = holder.querySelector('b')!;
  if (b.textContent !== String(value)) b.textContent = String(value);
  holder.dataset.alert = String(alert);
  root.dataset[camel(field)] = String(value);
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function makePanel(name: string): Panel {
  const stats: Record<string, HTMLElement> = {};
  const statsRow = el('div', { className: 'stats' });
  for (const [field, label] of STATS) {
    const s = el('span', {}, el('b', {}, '0'), label);
    s.dataset.field = field;
    stats[field] = s;
    statsRow.append(s);
  }
  // A fixed drawing size, scaled by CSS: a window resize (or a full-page screenshot) never clears it.
  const canvas = el('canvas', { className: 'chart', role: 'img', width: Math.round(CHART_W * devicePixelRatio), height: Math.round(CHART_H * devicePixelRatio) });
  canvas.dataset.bot = name;
  canvas.setAttribute('aria-label', `${name}: instances and requests over time`);
  const swatch = (color: string) => {
    const i = el('i');
    i.style.background = color;
    return i;
  };
  const span = el('span', { className: 'span' });
  const legend = el('figcaption', { className: 'legend' }, ...[...SERIES].reverse().map((s) => el('span', {}, swatch(s.color), s.label)), span);
  const instances = el('tbody');
  const coldStarts = el('tbody');
  const settings = el('small');
  const error = el('div', { className: 'error', role: 'alert', hidden: true });
  const root = el(
    'section',
    { className: 'bot' },
    el('h2', {}, name, settings),
    statsRow,
    el(
      'div',
      { className: 'row' },
      el('figure', {}, canvas, legend),
      el(
        'div',
        {},
        el('table', { className: 'instances' }, el('caption', {}, 'Instances'), el('thead', {}, el('tr', {}, el('th', {}, 'pid'), el('th', {}, 'state'), el('th', { className: 'num' }, 'in flight'), el('th', {}, 'revision'), el('th', { className: 'num' }, 'cold start'))), instances),
        el('table', { className: 'cold-starts' }, el('caption', {}, 'Cold starts'), el('thead', {}, el('tr', {}, el('th', {}, 'at'), el('th', { className: 'num' }, 'spawn → ready'))), coldStarts),
      ),
    ),
    error,
  );
  root.dataset.bot = name;
  return { root, settings, stats, canvas, instances, coldStarts, error };
}

function emptyRow(cols: number, text: string): HTMLTableRowElement {
  return el('tr', {}, el('td', { className: 'empty', colSpan: cols }, text));
}

function updatePanel(p: Panel, bot: BotView, events: { delivered: number; dead: number }): void {
  const count = (state: string) => bot.instances.filter((i) => i.state === state).length;
  const s = bot.scale;
  p.settings.textContent = `${bot.revision} · min ${s.minScale} · max ${s.maxScale || '∞'} · target ${s.target} · concurrency ${s.containerConcurrency || '∞'} · scale-down after ${seconds(s.scaleDownDelayMs)}`;
  setField(p.stats.ready!, p.root, 'ready', count('ready'));
  setField(p.stats.starting!, p.root, 'starting', count('starting'));
  setField(p.stats.draining!, p.root, 'draining', count('draining'));
  setField(p.stats['in-flight']!, p.root, 'in-flight', bot.inFlight);
  setField(p.stats.waiting!, p.root, 'waiting', bot.held, bot.held > 0);
  setField(p.stats['cold-starts']!, p.root, 'cold-starts', bot.coldStarts.length);
  setField(p.stats.events!, p.root, 'events', events.delivered);
  setField(p.stats['dead-letters']!, p.root, 'dead-letters', events.dead, events.dead > 0);

  p.instances.replaceChildren(
    ...(bot.instances.length
      ? bot.instances.map((i) => {
          const row = el('tr', {}, el('td', {}, String(i.pid ?? '–')), el('td', {}, i.state), el('td', { className: 'num' }, String(i.inFlight)), el('td', {}, i.revision), el('td', { className: 'num' }, i.coldStartMs === undefined ? '–' : `${Math.round(i.coldStartMs)} ms`));
          row.dataset.state = i.state;
          return row;
        })
      : [emptyRow(5, bot.scale.minScale ? 'none' : 'none: scaled to zero, the next event starts one')]),
  );

  const colds = bot.coldStarts.slice(-8).reverse();
  p.coldStarts.replaceChildren(
    ...(colds.length
      ? colds.map((c) => {
          const row = el('tr', {}, el('td', {}, new Date(c.at).toLocaleTimeString()), el('td', { className: 'num' }, `${c.ms} ms`));
          row.dataset.ms = String(c.ms);
          return row;
        })
      : [emptyRow(2, 'none yet')]),
  );
  if (bot.coldStarts.length > 1) {
    const ms = bot.coldStarts.map((c) => c.ms);
    p.coldStarts.append(el('tr', { className: 'summary' }, el('td', {}, `median of ${ms.length}`), el('td', { className: 'num' }, `${Math.round(median(ms))} ms`)));
  }

  p.error.hidden = !bot.lastError;
  p.error.textContent = bot.lastError ?? '';
  draw(p.canvas, bot);
}

/** Step lines of every series, up to WINDOW_MS back on the host's clock; a dashed line at maxScale. */
function draw(canvas: HTMLCanvasElement, bot: BotView): void {
  const { width: w, height: h } = canvas;
  // One pixel of the chart's design size, in the canvas's own pixels.
  const px = w / CHART_W;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.clearRect(0, 0, w, h);
  const points = samples.filter((s) => s.bots[bot.name]);
  // From the first sample the page has, so a young host's minute is not squeezed into the right edge.
  const end = samples.at(-1)?.t ?? 0;
  const span = Math.min(WINDOW_MS, Math.max(MIN_SPAN_MS, end - (samples[0]?.t ?? end)));
  const start = end - span;
  const caption = canvas.parentElement?.querySelector('.span');
  if (caption) caption.textContent = `· last ${Math.round(span / 1000)} s`;
  const values = points.flatMap((s) => SERIES.map((k) => s.bots[bot.name]![k.key]));
  const max = Math.max(2, bot.scale.maxScale, ...values);
  const left = 24 * px;
  const top = 8 * px;
  const bottom = h - 6 * px;
  const x = (t: number) => left + ((t - start) / span) * (w - left - 4 * px);
  const y = (v: number) => bottom - (v / max) * (bottom - top);

  ctx.font = `${10 * px}px system-ui, sans-serif`;
  ctx.textBaseline = 'middle';
  ctx.lineWidth = px;
  const step = Math.max(1, Math.ceil(max / 4));
  for (let v = 0; v <= max; v += step) {
    ctx.strokeStyle = '#e6eaf0';
    ctx.beginPath();
    ctx.moveTo(left, y(v));
    ctx.lineTo(w, y(v));
    ctx.stroke();
    ctx.fillStyle = '#8a93a3';
    ctx.fillText(String(v), 4 * px, y(v));
  }
  if (bot.scale.maxScale > 0) {
    ctx.strokeStyle = '#c7ccd6';
    ctx.setLineDash([4 * px, 4 * px]);
    ctx.beginPath();
    ctx.moveTo(left, y(bot.scale.maxScale));
    ctx.lineTo(w, y(bot.scale.maxScale));
    ctx.stroke();
    ctx.setLineDash([]);
  }
  canvas.dataset.samples = String(points.length);
  canvas.dataset.max = String(max);
  if (points.length < 2) return;
  ctx.lineWidth = 2 * px;
  ctx.lineJoin = 'round';
  for (const s of SERIES) {
    ctx.strokeStyle = s.color;
    ctx.beginPath();
    let last: number | undefined;
    for (const p of points) {
      const v = y(p.bots[bot.name]![s.key]);
      const px = Math.max(left, x(p.t));
      if (last === undefined) ctx.moveTo(px, v);
      else if (v !== last) ctx.lineTo(px, last);
      ctx.lineTo(px, v);
      last = v;
    }
    ctx.stroke();
  }
}

function updateSummary(state: DashboardState): void {
  const root = document.getElementById('summary')!;
  const card = (field: string, value: number, alert = false) => setField(root.querySelector<HTMLElement>(`[data-field="${field}"]`)!, root, field, value, alert);
  card('bots', state.bots.length);
  card('instances', state.bots.reduce((n, b) => n + b.instances.filter((i) => i.state !== 'draining').length, 0));
  card('in-flight', state.bots.reduce((n, b) => n + b.inFlight, 0));
  card('waiting', state.bots.reduce((n, b) => n + b.held, 0), state.bots.some((b) => b.held > 0));
  card('pending', state.pending);
  card('dead-letters', state.deadLetters, state.deadLetters > 0);
  card('sockets', state.sockets);
}

function updateDeliveries(state: DashboardState): void {
  const routes = state.routes ?? {};
  const botOf = (route: string) => routes[route] ?? (route === 'gateway-egress' ? '(replies to chat clients)' : '');
  const entries = Object.entries(state.deliveries).sort(([a], [b]) => botOf(a).localeCompare(botOf(b)) || a.localeCompare(b));
  const body = document.querySelector<HTMLTableSectionElement>('#deliveries tbody')!;
  if (!entries.length) return;
  body.replaceChildren(
    ...entries.map(([route, counts]) => {
      const cells = OUTCOMES.map((o) => {
        const n = counts[o] ?? 0;
        const td = el('td', { className: 'num' }, String(n));
        td.dataset.outcome = o;
        td.dataset.count = String(n);
        if (n > 0 && o !== 'delivered') td.dataset.alert = 'true';
        return td;
      });
      const row = el('tr', {}, el('td', {}, route), el('td', {}, botOf(route)), ...cells);
      row.dataset.route = route;
      if (routes[route]) row.dataset.bot = routes[route];
      return row;
    }),
  );
}

function eventsOf(state: DashboardState, bot: string): { delivered: number; dead: number } {
  let delivered = 0;
  let dead = 0;
  for (const [route, counts] of Object.entries(state.deliveries)) {
    if (state.routes?.[route] !== bot) continue;
    delivered += counts.delivered ?? 0;
    dead += (counts.dead ?? 0) + (counts['dead-lettered'] ?? 0);
  }
  return { delivered, dead };
}

function render(state: DashboardState): void {
  const list = document.getElementById('bots')!;
  for (const bot of state.bots) {
    let p = panels.get(bot.name);
    if (!p) {
      p = makePanel(bot.name);
      panels.set(bot.name, p);
      list.append(p.root);
    }
    updatePanel(p, bot, eventsOf(state, bot.name));
  }
  updateSummary(state);
  updateDeliveries(state);
}

function setStatus(state: 'live' | 'offline', text: string): void {
  const status = document.getElementById('status')!;
  status.dataset.state = state;
  status.textContent = text;
}

async function refresh(): Promise<void> {
  try {
    const since = samples.at(-1)?.t;
    const res = await fetch(`/dashboard/state${since ? `?since=${since}` : ''}`, { cache: 'no-store' });
    if (!res.ok) throw new Error(`the host answered ${res.status}`);
    const state = (await res.json()) as DashboardState;
    const end = state.timeline.at(-1)?.t ?? samples.at(-1)?.t ?? 0;
    samples = samples.concat(state.timeline).filter((s) => s.t >= end - WINDOW_MS);
    render(state);
    refreshes++;
    document.body.dataset.refreshes = String(refreshes);
    setStatus('live', `live · ${new Date().toLocaleTimeString()}`);
  } catch (err) {
    setStatus('offline', `the dev host does not answer (${(err as Error).message}); retrying`);
  }
}

async function poll(): Promise<void> {
  await refresh();
  setTimeout(() => void poll(), POLL_MS);
}

void poll();

