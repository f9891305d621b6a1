// The web chat page's script (DESIGN §7). Served after Node strips the types: only erasable
// TypeScript here, and nothing imported. It speaks the gateway's WebSocket envelope: `session`,
// `message` → `ack`, `typing`, `chunk`, `reply`; after a drop it reconnects and sends `resume` with
// the last seq it saw, so replies produced while it was away arrive, once.

interface Frame {
  v: number;
  type: string;
  seq?: number;
  id?: string;
  text?: string;
  code?: string;
  message?: string;
  sessionId?: string;
  resumed?: boolean;
}

interface Pending {
  id: string;
  bot: string;
  conversation: string;
  text: string;
  acked: boolean;
}

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const log = $<HTMLDivElement>('log');
const typing = $<HTMLDivElement>('typing');
const statusEl = $<HTMLSpanElement>('status');
const botSelect = $<HTMLSelectElement>('bot');
const input = $<HTMLInputElement>('text');
const form = $<HTMLFormElement>('form');

const params = new URLSearchParams(location.search);
const token = params.get('token') ?? params.get('ticket');

const state = {
  socket: undefined as WebSocket | undefined,
  sessionId: undefined as string | undefined,
  lastSeq: 0,
  retries: 0,
  reconnects: 0,
  pending: new Map<string, Pending>(),
  bubbles: new Map<string, HTMLDivElement>(),
};

function setStatus(text: string, kind: string): void {
  statusEl.textContent = text;
  statusEl.dataset.state = kind;
}

function bubble(kind: string, text: string, id?: string): HTMLDivElement {
  const el = document.createElement('div');
  el.className = `msg ${kind}`;
  el.textContent = text;
  if (id) el.dataset.id = id;
  log.append(el);
  log.scrollTop = log.scrollHeight;
  return el;
}

function conversationFor(bot: string): string {
  const key = `knbot.conversation.${bot}`;
  let c = sessionStorage.getItem(key);
  if (!c) {
    c = `web-${crypto.randomUUID().slice(0, 8)}`;
    sessionStorage.setItem(key, c);
  }
  return c;
}

function socketUrl(): string {
  const url = new URL('/v1/ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  if (token) url.searchParams.set('ticket', token);
  return url.href;
}

function connect(): void {
  const ws = new WebSocket(socketUrl());
  state.socket = ws;
  ws.onopen = () => {
    state.retries = 0;
    if (state.sessionId) ws.send(JSON.stringify({ v: 1, type: 'resume', sessionId: state.sessionId, lastSeq: state.lastSeq }));
  };
  ws.onmessage = (e) => onFrame(JSON.parse(String(e.data)) as Frame);
  ws.onclose = () => {
    if (state.socket !== ws) return;
    state.socket = undefined;
    setStatus('reconnecting…', 'reconnecting');
    const delay = Math.min(5000, 200 * 2 ** state.retries++) * (0.5 + Math.random() / 2);
    setTimeout(connect, delay);
  };
}

function onFrame(f: Frame): void {
  if (typeof f.seq === 'number' && f.seq > 0) {
    if (f.seq <= state.lastSeq) return;
    state.lastSeq = f.seq;
  }
  switch (f.type) {
    case 'session':
      if (f.resumed) {
        state.reconnects++;
        setStatus('connected (resumed)', 'connected');
        resendUnacked();
      } else if (state.sessionId && state.sessionId !== f.sessionId) {
        // The old session is gone: keep this one, send again what was never acknowledged.
        state.sessionId = f.sessionId;
        state.lastSeq = 0;
        setStatus('connected (new session)', 'connected');
        resendUnacked();
      } else if (!state.sessionId) {
        state.sessionId = f.sessionId;
        setStatus('connected', 'connected');
      }
      return;
    case 'ack': {
      const p = state.pending.get(f.id ?? '');
      if (p) p.acked = true;
      return;
    }
    case 'typing':
      typing.textContent = `${botSelect.value} is typing…`;
      return;
    case 'chunk': {
      const el = state.bubbles.get(f.id ?? '') ?? replyBubble(f.id ?? '');
      el.textContent += f.text ?? '';
      log.scrollTop = log.scrollHeight;
      return;
    }
    case 'reply': {
      const el = state.bubbles.get(f.id ?? '') ?? replyBubble(f.id ?? '');
      el.textContent = f.text ?? '';
      el.classList.remove('streaming');
      el.dataset.done = 'true';
      state.pending.delete(f.id ?? '');
      if (![...state.bubbles.values()].some((b) => b.classList.contains('streaming'))) typing.textContent = '';
      if (state.pending.size === 0) typing.textContent = '';
      return;
    }
    case 'error':
      if (f.code === 'unknown_session') {
        state.sessionId = undefined;
        return;
      }
      bubble('error', `${f.code}: ${f.message}`, f.id);
      if (f.id) state.pending.delete(f.id);
      typing.textContent = '';
      return;
  }
}

function replyBubble(id: string): HTMLDivElement {
  const el = bubble('bot streaming', '', id);
  state.bubbles.set(id, el);
  return el;
}

function resendUnacked(): void {
  for (const p of state.pending.values()) if (!p.acked) send(p);
}

function send(p: Pending): void {
  state.socket?.send(JSON.stringify({ v: 1, type: 'message', id: p.id, bot: p.bot, conversation: p.conversation, text: p.text }));
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text || !botSelect.value) return;
  input.value = '';
  const p: Pending = { id: crypto.randomUUID(), bot: botSelect.value, conversation: conversationFor(botSelect.value), text, acked: false };
  state.pending.set(p.id, p);
  bubble('user', text, p.id);
  if (state.socket?.readyState === WebSocket.OPEN && state.sessionId) send(p);
});

async function loadBots(): Promise<void> {
  const res = await fetch(`/v1/bots${token ? `?ticket=${encodeURIComponent(token)}` : ''}`);
  if (!res.ok) {
    bubble('error', `could not list bots: ${res.status}`);
    return;
  }
  const { bots } = (await res.json()) as { bots: { name: string }[] };
  for (const b of bots) botSelect.append(new Option(b.name, b.name));
  const wanted = params.get('bot');
  if (wanted && bots.some((b) => b.name === wanted)) botSelect.value = wanted;
}

// For tests and the curious: the page's connection state.
(globalThis as unknown as { knbotChat: typeof state }).knbotChat = state;

void loadBots();
connect();
