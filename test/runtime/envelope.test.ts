import { describe, expect, it } from 'vitest';
import { FrameError, parseClientFrame, parseDirectFrame } from '../../runtime/envelope.ts';

const code = (parse: () => unknown) => {
  try {
    return parse();
  } catch (e) {
    if (e instanceof FrameError) return { code: e.code, id: e.id };
    throw e;
  }
};

const message = (extra: Record<string, unknown>) => JSON.stringify({ v: 1, type: 'message', id: 'm1', conversation: 'c/t', text: 'hi', ...extra });

describe('the envelope: the gateway names a bot in every message, a pod need not', () => {
  it.each([
    ['no bot', message({}), { code: 'invalid_frame', id: 'm1' }, { type: 'message', id: 'm1', conversation: 'c/t', text: 'hi' }],
    ['a bot', message({ bot: 'echo' }), { type: 'message', id: 'm1', bot: 'echo', conversation: 'c/t', text: 'hi' }, { type: 'message', id: 'm1', bot: 'echo', conversation: 'c/t', text: 'hi' }],
    ['a bad bot name', message({ bot: 'Echo!' }), { code: 'invalid_frame', id: 'm1' }, { code: 'invalid_frame', id: 'm1' }],
    ['a null bot', message({ bot: null }), { code: 'invalid_frame', id: 'm1' }, { code: 'invalid_frame', id: 'm1' }],
  ])('a message with %s', (_, text, gateway, direct) => {
    expect(code(() => parseClientFrame(text))).toEqual(gateway);
    expect(code(() => parseDirectFrame(text))).toEqual(direct);
  });

  it.each([
    ['{', 'malformed_json'],
    ['[]', 'invalid_frame'],
    ['{"v":2,"type":"ping"}', 'unsupported_version'],
    ['{"v":1,"type":"dance"}', 'unknown_type'],
    ['{"v":1,"type":"resume","sessionId":"s","lastSeq":-1}', 'invalid_frame'],
  ])('both refuse %s with %s', (text, expected) => {
    expect(code(() => parseClientFrame(text))).toMatchObject({ code: expected });
    expect(code(() => parseDirectFrame(text))).toMatchObject({ code: expected });
  });
});
