// What the gateway's and a pod's WebSocket endpoints share. Handshakes are counted in
// knbot_requests_total as requests are: once each, by how they ended: taken (101), refused with a
// problem response (its status), or left by the client before either (499, the code proxies give a
// request its client gave up on). Peers are pinged on a heartbeat, and dropped when they stop answering.
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { HttpProblem, writeProblem } from './problem.ts';

/** Handshakes under way, by their socket: what counts each one when it ends. */
const open = new WeakMap<Duplex, (code: number) => void>();

/** Starts counting the handshake on `socket`; `count` gets its status once, when it ends. */
export function trackHandshake(socket: Duplex, count: (code: number) => void): void {
  const end = (code: number): void => {
    if (open.get(socket) !== end) return;
    open.delete(socket);
    count(code);
  };
  open.set(socket, end);
  socket.once('close', () => end(499));
}

/** The handshake on `socket` succeeded: the socket is a WebSocket now. */
export function handshakeTaken(socket: Duplex): void {
  open.get(socket)?.(101);
}

/** Refuses the handshake on `socket` with `problem` as the whole response, and closes it. */
export function refuseHandshake(socket: Duplex, problem: HttpProblem): void {
  open.get(socket)?.(problem.status);
  writeProblem(socket, problem);
}

/**
 * Handshakes `ws` itself refuses (a bad `Sec-WebSocket-Key`, version or subprotocol header) are answered
 * as problems, like every other refusal, and counted.
 */
export function refuseBadHandshakes(wss: WebSocketServer): void {
  wss.on('wsClientError', (err, socket) => refuseHandshake(socket, new HttpProblem(400, 'bad_handshake', 'Bad request', err.message)));
}

/** A socket and whether it answered since the last ping (its `pong` handler sets `alive`). */
export interface Peer {
  ws: WebSocket;
  alive: boolean;
}

/** One heartbeat: a peer that has not answered the last ping is dropped, the others are pinged again. */
export function heartbeat(peers: Iterable<Peer>): void {
  for (const p of peers) {
    if (!p.alive) {
      p.ws.terminate();
      continue;
    }
    p.alive = false;
    p.ws.ping();
  }
}
