// The web chat page's script (DESIGN §7). Served after Node strips the types: only erasable
// TypeScript here, and nothing imported. It speaks the gateway's WebSocket envelope: `session`,
// `message` → `ack`, `typing`, `chunk`, `reply`; after a drop it reconnects and sends `resume` with
// the last seq it saw, so the frames it missed (replies finished while it was away too) arrive, once.
// A reply's `buttons` show under it; pressing one says its label in the conversation.

interface Frame {
  v: number;
  type: string;
  seq?: number;
  id?: string;
  bot?: string;
  text?: string;
  code?: string;
  message?: string;
  sessionId?: string;
  resumed?: boolean;
  /** A reply's buttons, as the bot wrote them: labels, or `{label, id?, value?}`. */
  buttons?: unknown;
}

interface Pending {
  id: string;
  bot: string;
  conversation: string;
  text: string;
  acked: boolean;
  /** The user's bubble, whose note says sending, sent or failed. */
  el: HTMLDivElement;
}

/** Leaves room under the gateway's default frame limit (64 KiB) for the envelope around the text. */
const MAX_TEXT_BYTES = 60 * 1024;
/** As many buttons as the gateway lets through to chat platforms. */
const MAX_BUTTONS = 100;
/** With nothing heard for this long the page pings; twice as long and it takes the socket for dead. */
const IDLE_MS = 25_000;

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const log = $<HTMLDivElement>('log');
const typingEl = $<HTMLDivElement>('typing');
const typingWho = $<HTMLSpanElement>('typing-who');
const statusEl = $<HTMLSpanElement>('status');
const botSelect = $<HTMLSelectElement>('bot');
const input = $<HTMLInputElement>('text');
const sendButton = $<HTMLButtonElement>('send');
const form = $<HTMLFormElement>('form');

const params = new URLSearchParams(location.search);
const token = params.get('token') ?? params.get('ticket');

const state = {
  socket: undefined as WebSocket | undefined,
  sessionId: undefined as string | undefined,
  /** The seq of the last session frame taken; frames at or below it are replays already seen. */
  lastSeq: 0,
  /** True from sending `resume` on a new socket until the gateway answers it. */
  resuming: false,
  /** True while the connection is down after having been up (shown once per outage). */
  down: false,
  /** Set when reconnecting would not help (refused credentials). */
  stopped: false,
  retries: 0,
  reconnects: 0,
  lastHeard: 0,
  timer: undefined as ReturnType<typeof setTimeout> | undefined,
  pending: new Map<string, Pending>(),
  bubbles: new Map<string, HTMLDivElement>(),
  /** Message ids whose bot is typing → the bot's name. */
  typing: new Map<string, string>(),
};

function setStatus(text: string, kind: 'connecting' | 'connected' | 'reconnecting' | 'offline'): void {
  statusEl.textContent = text;
  statusEl.dataset.state = kind;
}

function atBottom(): boolean {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 48;
}

function add(el: HTMLElement, after?: HTMLElement): void {
  const follow = atBottom();
  if (after?.isConnected) after.after(el);
  else log.append(el);
  if (follow) log.scrollTop = log.scrollHeight;
}

function element(kind: string, text: string): HTMLDivElement {
  const el = document.createElement('div');
  el.className = kind;
  el.textContent = text;
  return el;
}

/** A line from the page itself: connection changes. */
function note(text: string, kind = 'note'): void {
  add(element(`note ${kind}`, text));
}

function showError(text: string, id?: string): void {
  const el = element('msg error', text);
  el.setAttribute('role', 'alert');
  if (id) el.dataset.id = id;
  add(el, id ? (state.bubbles.get(id) ?? state.pending.get(id)?.el) : undefined);
}

function userBubble(p: Omit<Pending, 'el' | 'acked'>): HTMLDivElement {
  const el = element('msg user', p.text);
  el.dataset.id = p.id;
  el.dataset.state = 'sending';
  el.append(element('meta', 'sending…'));
  add(el);
  return el;
}

function markUser(p: Pending, how: 'sent' | 'failed'): void {
  p.el.dataset.state = how;
  const meta = p.el.querySelector('.meta');
  if (meta) meta.textContent = how;
}

function replyBubble(id: string, bot: string): HTMLDivElement {
  let el = state.bubbles.get(id);
  if (el) return el;
  el = element('msg bot streaming', '');
  el.dataset.id = id;
  el.dataset.bot = bot;
  const who = element('who', bot);
  const body = element('body', '');
  el.append(who, body);
  state.bubbles.set(id, el);
  add(el);
  return el;
}

const bodyOf = (el: HTMLDivElement) => el.querySelector('.body') as HTMLDivElement;

/**
 * The labels of a reply's buttons (a label string, or `{label}`), one line each; anything else is left
 * out rather than failing the reply, as the gateway leaves out what it cannot send to a platform.
 */
function buttonLabels(raw: unknown): string[] {
  if (!Array.isArray(raw)) return [];
  const labels: string[] = [];
  for (const item of raw.slice(0, MAX_BUTTONS)) {
    const label = typeof item === 'string' ? item : item !== null && typeof item === 'object' ? (item as { label?: unknown }).label : undefined;
    const line = typeof label === 'string' ? label.replace(/\s+/g, ' ').trim() : '';
    if (line) labels.push(line);
  }
  return labels;
}

/** The reply's buttons under its text; one press says its label and closes the row. */
function showButtons(el: HTMLDivElement, labels: string[], bot: string): void {
  el.querySelector('.choices')?.remove();
  if (!labels.length) return;
  const row = document.createElement('div');
  row.className = 'choices';
  row.setAttribute('role', 'group');
  row.setAttribute('aria-label', 'choices');
  for (const label of labels) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'choice';
    b.textContent = label;
    b.addEventListener('click', () => {
      if (!say(bot, label)) return;
      b.dataset.chosen = 'true';
      for (const other of row.querySelectorAll('button')) other.disabled = true;
    });
    row.append(b);
  }
  const follow = atBottom();
  el.append(row);
  if (follow) log.scrollTop = log.scrollHeight;
}

function renderTyping(): void {
  const bots = [...new Set(state.typing.values())];
  typingEl.hidden = bots.length === 0;
  typingWho.textContent = bots.length ? `${bots.join(', ')} ${bots.length === 1 ? 'is' : 'are'} typing` : '';
}

function doneWith(id: string): void {
  state.typing.delete(id);
  state.pending.delete(id);
  renderTyping();
}

function socketUrl(): string {
  const url = new URL('/v1/ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  if (token) url.searchParams.set('ticket', token);
  return url.href;
}

function connect(): void {
  state.timer = undefined;
  const ws = new WebSocket(socketUrl());
  state.socket = ws;
  state.lastHeard = Date.now();
  ws.onopen = () => {
    if (!state.sessionId) return;
    state.resuming = true;
    ws.send(JSON.stringify({ v: 1, type: 'resume', sessionId: state.sessionId, lastSeq: state.lastSeq }));
  };
  ws.onmessage = (e) => {
    state.lastHeard = Date.now();
    let f: Frame;
    try {
      f = JSON.parse(String(e.data)) as Frame;
    } catch {
      return;
    }
    onFrame(f);
  };
  ws.onclose = (e) => dropped(ws, e.code, e.reason);
}

/** The socket is gone (closed by either side, or found dead): show it, and reconnect unless that cannot help. */
function dropped(ws: WebSocket, code: number, reason: string): void {
  if (state.socket !== ws) return;
  ws.onclose = ws.onmessage = ws.onopen = null;
  state.socket = undefined;
  state.resuming = false;
  if (code === 1008 && /unauthori[sz]ed|authenticate/i.test(reason)) {
    state.stopped = true;
    setStatus('not authorized', 'offline');
    showError(`the gateway refused this page: ${reason || 'unauthorized'} (open it with ?token=…)`);
    return;
  }
  if (code === 1009) {
    // The gateway closes a socket on a frame above its limit; sending it again would only repeat that.
    for (const p of state.pending.values()) {
      if (p.acked) continue;
      markUser(p, 'failed');
      showError('too long for the gateway: this message was not sent', p.id);
      state.pending.delete(p.id);
    }
  }
  const delay = Math.min(5000, 250 * 2 ** state.retries++) * (0.5 + Math.random() / 2);
  if (state.sessionId) {
    setStatus('reconnecting…', 'reconnecting');
    if (!state.down) note(`connection lost${code === 1006 ? '' : ` (${code}${closeReason(reason)})`}: reconnecting…`, 'lost');
    state.down = true;
  } else {
    setStatus(state.retries > 1 ? 'offline: retrying…' : 'connecting…', state.retries > 1 ? 'offline' : 'connecting');
  }
  state.timer = setTimeout(connect, delay);
}

function closeReason(reason: string): string {
  if (!reason) return '';
  try {
    const r = JSON.parse(reason) as { reason?: string; error?: string };
    return `: ${r.reason ?? r.error ?? reason}`;
  } catch {
    return `: ${reason}`;
  }
}

/** A new session: the first, or the one after a refused resume. */
function adopt(sessionId: string): void {
  state.sessionId = sessionId;
  state.lastSeq = 0;
  state.retries = 0;
  state.down = false;
  setStatus('connected', 'connected');
  resendUnacked();
}

/**
 * The session is gone (expired, or the gateway lost it): start over on a new socket. The session the
 * gateway opened for this one is not taken up, because a refused resume may have left the socket
 * attached to the old session's log.
 */
function restart(ws: WebSocket, why: string): void {
  ws.onclose = ws.onmessage = ws.onopen = null;
  ws.close();
  state.socket = undefined;
  state.resuming = false;
  state.sessionId = undefined;
  state.lastSeq = 0;
  state.typing.clear();
  renderTyping();
  note(`could not resume (${why}): starting a new session; replies still on their way are lost`, 'resumed');
  connect();
}

function onFrame(f: Frame): void {
  // A refused resume is answered in the session the gateway opened for this socket, whose seq
  // numbers start again; every other numbered frame belongs to the session the page keeps.
  const refused = state.resuming && f.type === 'error' && (f.code === 'unknown_session' || f.code === 'invalid_frame');
  if (!refused && typeof f.seq === 'number' && f.seq > 0) {
    if (f.seq <= state.lastSeq) return;
    state.lastSeq = f.seq;
  }
  switch (f.type) {
    case 'session':
      if (f.resumed) {
        state.resuming = false;
        state.reconnects++;
        state.retries = 0;
        state.down = false;
        setStatus('reconnected (resumed)', 'connected');
        note('reconnected: session resumed', 'resumed');
        resendUnacked();
      } else if (!state.resuming) {
        adopt(f.sessionId ?? '');
      }
      // Else it is the session the gateway opens for every new socket, before it reads the resume.
      return;
    case 'ack': {
      const p = state.pending.get(f.id ?? '');
      if (p && !p.acked) {
        p.acked = true;
        markUser(p, 'sent');
      }
      return;
    }
    case 'typing':
      if (f.id && !state.bubbles.get(f.id)?.dataset.done) state.typing.set(f.id, f.bot ?? state.pending.get(f.id)?.bot ?? 'the bot');
      renderTyping();
      return;
    case 'chunk': {
      const id = f.id ?? '';
      const el = replyBubble(id, f.bot ?? state.pending.get(id)?.bot ?? state.typing.get(id) ?? 'bot');
      if (el.dataset.done) return;
      const follow = atBottom();
      bodyOf(el).textContent += f.text ?? '';
      if (follow) log.scrollTop = log.scrollHeight;
      return;
    }
    case 'reply': {
      const id = f.id ?? '';
      const el = replyBubble(id, f.bot ?? state.pending.get(id)?.bot ?? 'bot');
      bodyOf(el).textContent = f.text ?? '';
      el.classList.remove('streaming');
      el.dataset.done = 'true';
      showButtons(el, buttonLabels(f.buttons), el.dataset.bot ?? 'bot');
      const p = state.pending.get(id);
      if (p && !p.acked) markUser(p, 'sent');
      doneWith(id);
      return;
    }
    case 'error':
      if (refused) return restart(state.socket!, f.code ?? 'refused');
      if (f.code === 'resume_gap') return note('reconnected, but some of what was missed is gone: replies may be incomplete', 'lost');
      showError(`${f.code}: ${f.message}`, f.id);
      if (f.id) {
        const p = state.pending.get(f.id);
        if (p) markUser(p, 'failed');
        const el = state.bubbles.get(f.id);
        if (el && !el.dataset.done) {
          el.classList.remove('streaming');
          el.dataset.done = 'failed';
        }
        doneWith(f.id);
      }
      return;
  }
}

function resendUnacked(): void {
  for (const p of state.pending.values()) if (!p.acked) send(p);
}

function send(p: Pending): void {
  const ws = state.socket;
  if (ws?.readyState !== WebSocket.OPEN || !state.sessionId || state.resuming) return;
  ws.send(JSON.stringify({ v: 1, type: 'message', id: p.id, bot: p.bot, conversation: p.conversation, text: p.text }));
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

/** Says `text` to `bot` in its conversation: shown at once, sent now or once connected. False when too long. */
function say(bot: string, text: string): boolean {
  if (new TextEncoder().encode(text).length > MAX_TEXT_BYTES) {
    showError(`too long: messages are limited to ${MAX_TEXT_BYTES / 1024} KiB`);
    return false;
  }
  const fields = { id: crypto.randomUUID(), bot, conversation: conversationFor(bot), text };
  const p: Pending = { ...fields, acked: false, el: userBubble(fields) };
  state.pending.set(p.id, p);
  send(p);
  return true;
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text || !botSelect.value) return;
  if (!say(botSelect.value, text)) return;
  input.value = '';
  input.focus();
});

// Heartbeat from this side: the gateway pings at the WebSocket level, which a page cannot see, so a
// silently dead connection is found by pinging in the envelope when it has been quiet.
setInterval(() => {
  const ws = state.socket;
  if (ws?.readyState !== WebSocket.OPEN || !state.sessionId) return;
  const quiet = Date.now() - state.lastHeard;
  if (quiet > 2 * IDLE_MS) {
    ws.close();
    dropped(ws, 1006, 'no answer to ping');
  } else if (quiet > IDLE_MS) ws.send(JSON.stringify({ v: 1, type: 'ping' }));
}, 5000);

addEventListener('online', () => {
  if (state.socket || state.stopped || state.timer === undefined) return;
  clearTimeout(state.timer);
  connect();
});

async function loadBots(): Promise<void> {
  let res: Response;
  try {
    res = await fetch(`/v1/bots${token ? `?ticket=${encodeURIComponent(token)}` : ''}`);
  } catch (err) {
    showError(`could not list bots: ${(err as Error).message}`);
    return;
  }
  if (!res.ok) {
    const detail = await res.json().then((b: { detail?: string }) => b.detail, () => undefined);
    showError(`could not list bots: ${res.status}${detail ? ` ${detail}` : ''}${res.status === 401 ? ' (open the page with ?token=…)' : ''}`);
    return;
  }
  const { bots } = (await res.json()) as { bots: { name: string }[] };
  botSelect.replaceChildren(...bots.map((b) => new Option(b.name, b.name)));
  if (bots.length === 0) {
    botSelect.append(new Option('no bots', '', true, true));
    botSelect.disabled = true;
    return;
  }
  const wanted = params.get('bot');
  if (wanted && bots.some((b) => b.name === wanted)) botSelect.value = wanted;
  botSelect.disabled = false;
  sendButton.disabled = false;
  input.focus();
}

// For tests and the curious: the page's connection state.
(globalThis as unknown as { knbotChat: typeof state }).knbotChat = state;

void loadBots();
connect();
