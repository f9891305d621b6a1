import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EGRESS_TYPES } from '../../gateway/egress.ts';
import { Gateway, type GatewayOptions } from '../../gateway/server.ts';
import type { BotEntry } from '../../gateway/sessions.ts';
import { type BrokerRoute, LocalBroker } from '../../eventing/broker/index.ts';
import { MESSAGE_RECEIVED } from '../../eventing/chat.ts';
import { type Pod, startPod, waitFor } from '../pod.ts';

export interface SystemBot {
  name: string;
  dir: string;
  env?: Record<string, string>;
  turnPolicy?: BotEntry['turnPolicy'];
}

export interface ChatSystem {
  url: string;
  wsUrl: string;
  gateway: Gateway;
  broker: LocalBroker;
  brokerUrl: string;
  egressUrl: string;
  pods: Map<string, Pod>;
  stop(): Promise<void>;
}

/**
 * The chat path with real parts: the local broker (on disk), each bot a `knbot serve` process whose
 * K_SINK is the broker, and the gateway, wired by routes as `knbot dev` wires them: messages to the
 * bot by `chatbot`, bot output to the gateway's egress endpoint in conversation order.
 */
export async function startChatSystem(bots: SystemBot[], options: Partial<GatewayOptions> = {}): Promise<ChatSystem> {
  const stateDir = mkdtempSync(join(tmpdir(), 'knbot-gw-'));
  const broker = new LocalBroker({ stateDir, port: 0, routes: [] });
  const brokerPort = await broker.start();
  const brokerUrl = `http://127.0.0.1:${brokerPort}/`;
  const pods = new Map<string, Pod>();
  await Promise.all(bots.map(async (b) => pods.set(b.name, await startPod(b.dir, { K_SINK: brokerUrl, ...b.env }))));
  await Promise.all([...pods.values()].map((p) => waitFor(() => fetch(`${p.url}/health/readiness`).then((r) => r.ok), 'readiness')));
  const gateway = new Gateway({
    brokerUrl,
    bots: () => bots.map((b) => ({ name: b.name, namespace: 'default', ...(b.turnPolicy ? { turnPolicy: b.turnPolicy } : {}) })),
    auth: { open: true },
    ...options,
  });
  const { port, egressPort } = await gateway.start(0);
  const egressUrl = `http://127.0.0.1:${egressPort}/`;
  const routes: BrokerRoute[] = [
    ...bots.map((b) => ({ id: `bot-${b.name}`, url: `${pods.get(b.name)!.url}/`, filters: [{ exact: { chatbot: b.name } as Record<string, string> }, { exact: { type: MESSAGE_RECEIVED } }] })),
    { id: 'gateway', url: egressUrl, ordered: true, filters: [{ any: EGRESS_TYPES.map((type) => ({ exact: { type } })) }] },
  ];
  broker.setRoutes(routes);
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    gateway,
    broker,
    brokerUrl,
    egressUrl,
    pods,
    stop: async () => {
      await gateway.close();
      await Promise.all([...pods.values()].map((p) => p.stop()));
      await broker.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

export { type Frame, TestClient } from '../ws-client.ts';
