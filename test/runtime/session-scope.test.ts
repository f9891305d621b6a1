import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Pod, chatHeaders, fixture, jsonOf, startPod, waitFor } from '../pod.ts';

// The `counter` fixture counts the messages of each session it is given: whoever reaches the same
// session sees the same count. Conversation keys are not secrets, so a session must be out of reach
// of anyone who merely names the same conversation from somewhere else.

let pod: Pod;

beforeAll(async () => {
  pod = await startPod(fixture('counter'));
  await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok, () => false), 'readiness');
});
afterAll(() => pod?.stop());

let ids = 0;
/** A chat CloudEvent from `source` on `platform`, by `user`, in conversation `subject`; its count. */
async function count(source: string, platform: string, user: string, subject: string): Promise<string> {
  const headers = chatHeaders(`m${++ids}`, { 'ce-source': source, 'ce-subject': subject, 'ce-chatplatform': platform, 'ce-chatuser': user });
  const res = await fetch(pod.url, { method: 'POST', headers, body: JSON.stringify({ text: 'hi', user: { id: user } }) });
  expect(res.status).toBe(200);
  return (await jsonOf(res)).text;
}

const chat = (conversation: string, user?: string) =>
  fetch(`${pod.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ conversation, text: 'hi', ...(user ? { user: { id: user } } : {}) }) })
    .then(jsonOf)
    .then((r) => r.text);

describe('conversation state', () => {
  it('is shared by everyone in one platform conversation (a Slack channel is one conversation)', async () => {
    expect(await count('/slack/T1/A1', 'slack', 'U1', 'C1')).toBe('1');
    expect(await count('/slack/T1/A1', 'slack', 'U2', 'C1')).toBe('2');
  });

  it('is kept apart for the same conversation id on another platform or workspace', async () => {
    expect(await count('/slack/T1/A1', 'slack', 'U1', 'shared-id')).toBe('1');
    expect(await count('/telegram/bot1/bot1', 'telegram', 'U1', 'shared-id')).toBe('1');
    expect(await count('/slack/T2/A1', 'slack', 'U1', 'shared-id')).toBe('1');
    expect(await count('/slack/T1/A1', 'slack', 'U1', 'shared-id')).toBe('2');
  });

  it('is the user\'s own where clients name their conversations (WebSocket clients of the gateway)', async () => {
    expect(await count('/ws/default/counter', 'ws', 'alice', 'my-chat')).toBe('1');
    expect(await count('/ws/default/counter', 'ws', 'alice', 'my-chat')).toBe('2');
    // Another principal naming alice's conversation gets a conversation of its own.
    expect(await count('/ws/default/counter', 'ws', 'mallory', 'my-chat')).toBe('1');
    // A client cannot reach a platform's conversation by naming its id.
    expect(await count('/slack/T1/A1', 'slack', 'U1', 'C9')).toBe('1');
    expect(await count('/ws/default/counter', 'ws', 'alice', 'C9')).toBe('1');
  });

  it('is the user\'s own on the pod\'s HTTP chat, and apart from events on the same conversation', async () => {
    expect(await chat('room')).toBe('1');
    expect(await chat('room')).toBe('2');
    expect(await chat('room', 'bob')).toBe('1');
    expect(await count('/test/T1/A1', 'test', 'anonymous', 'room')).toBe('1');
  });

  it('cannot be reached by a user or conversation built to look like another key', async () => {
    // user "y|z" in conversation "c" and user "y" in conversation "z|c" would read alike joined with "|" unescaped.
    expect(await count('/ws/default/counter', 'ws', 'y|z', 'c')).toBe('1');
    expect(await count('/ws/default/counter', 'ws', 'y', 'z|c')).toBe('1');
    expect(await count('/ws/default/counter', 'ws', 'y|z', 'c')).toBe('2');
  });
});
