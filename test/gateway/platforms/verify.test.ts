// The published signature test vectors (chat-platforms notes §2.9) and the strict parsing under them.
import { describe, expect, it } from 'vitest';
import { hmacSha256, headerValue, parseBase64, parseHex, safeEqual, verifyEd25519 } from '../../../gateway/platforms/verify.ts';
import { RFC8032_TEST1, signDiscord, signHub, signLine, signSlack } from '../../fakes/signing.ts';
import { SLACK_EXAMPLE } from './vectors.ts';

describe('published vectors', () => {
  it("reproduces Slack's documented v0 signature", () => {
    expect(signSlack(SLACK_EXAMPLE.secret, SLACK_EXAMPLE.timestamp, SLACK_EXAMPLE.body)).toBe(SLACK_EXAMPLE.signature);
    const mac = hmacSha256(SLACK_EXAMPLE.secret, `v0:${SLACK_EXAMPLE.timestamp}:`, Buffer.from(SLACK_EXAMPLE.body));
    expect(`v0=${mac.toString('hex')}`).toBe(SLACK_EXAMPLE.signature);
  });

  it.each([
    ["It's a Secret to Everybody", 'Hello, World!', 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17'],
    ['test-app-secret', '{"object":"whatsapp_business_account","entry":[]}', 'sha256=c84a394cc475525991e78ff16e430b02e47f953877d2af0ade26956ce6f384dc'],
  ])('reproduces X-Hub-Signature-256 for secret %j', (secret, body, expected) => {
    expect(signHub(secret, body)).toBe(expected);
    expect(`sha256=${hmacSha256(secret, body).toString('hex')}`).toBe(expected);
  });

  it('reproduces the LINE vector', () => {
    const body = '{"destination":"U0123456789abcdef0123456789abcdef","events":[]}';
    expect(signLine('0123456789abcdef0123456789abcdef', body)).toBe('94lIexwJJhBAEvU5fHF/i4JXKbSzbpgGUoZUZlwge9Q=');
  });

  it('verifies RFC 8032 §7.1 TEST 1 with the raw public key', () => {
    expect(signDiscord(RFC8032_TEST1.secretKey, '', '')).toBe(RFC8032_TEST1.signatureOfEmpty);
    expect(verifyEd25519(RFC8032_TEST1.publicKey, Buffer.alloc(0), RFC8032_TEST1.signatureOfEmpty)).toBe(true);
    expect(verifyEd25519(RFC8032_TEST1.publicKey, Buffer.from([0]), RFC8032_TEST1.signatureOfEmpty)).toBe(false);
  });

  it('verifies the Discord-shaped vector made with the RFC key', () => {
    const sig = '1695961a47c91a1ec033b819b7e87e3dbc583dd0cee6d1fd0216f58ac87b6228ae531ddbf91fb7bc28d7edf7f08604da16f54624f38a6bc0614e4dc13cd47f0f';
    expect(signDiscord(RFC8032_TEST1.secretKey, '1700000000', '{"type":1}')).toBe(sig);
    expect(verifyEd25519(RFC8032_TEST1.publicKey, Buffer.from('1700000000{"type":1}'), sig)).toBe(true);
  });
});

describe('strict decoding', () => {
  const hex = 'a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503';

  it('reads hex in either case, and nothing else', () => {
    expect(parseHex(hex, 32)?.toString('hex')).toBe(hex);
    expect(parseHex(hex.toUpperCase(), 32)?.toString('hex')).toBe(hex);
    expect(parseHex(hex.slice(0, 62), 32)).toBeUndefined();
    expect(parseHex(`${hex}00`, 32)).toBeUndefined();
    // Buffer.from would stop at "zz" and return fewer bytes without complaint.
    expect(parseHex(`${hex.slice(0, 62)}zz`, 32)).toBeUndefined();
    expect(parseHex(` ${hex.slice(1)}`, 32)).toBeUndefined();
  });

  it('reads base64 with or without padding, and nothing else', () => {
    const b64 = '94lIexwJJhBAEvU5fHF/i4JXKbSzbpgGUoZUZlwge9Q=';
    const bytes = Buffer.from(b64, 'base64');
    expect(parseBase64(b64, 32)).toEqual(bytes);
    expect(parseBase64(b64.slice(0, -1), 32)).toEqual(bytes);
    expect(parseBase64(b64.slice(0, -2), 32)).toBeUndefined();
    expect(parseBase64(b64.replace('/', '_'), 32)).toBeUndefined(); // base64url is not what LINE sends
    expect(parseBase64(`${b64}AAAA`, 32)).toBeUndefined();
  });

  it('compares buffers only when their lengths match', () => {
    expect(safeEqual(Buffer.from('abc'), Buffer.from('abc'))).toBe(true);
    expect(safeEqual(Buffer.from('abc'), Buffer.from('abd'))).toBe(false);
    expect(safeEqual(Buffer.from('abc'), Buffer.from('abcd'))).toBe(false);
  });

  it('rejects an Ed25519 signature that is truncated or not hex', () => {
    expect(verifyEd25519(RFC8032_TEST1.publicKey, Buffer.alloc(0), RFC8032_TEST1.signatureOfEmpty.slice(0, 126))).toBe(false);
    expect(verifyEd25519(RFC8032_TEST1.publicKey, Buffer.alloc(0), `${RFC8032_TEST1.signatureOfEmpty.slice(0, 126)}zz`)).toBe(false);
  });
});

describe('headerValue', () => {
  it('finds a header whatever the case of its name', () => {
    expect(headerValue({ 'x-slack-signature': 'a' }, 'X-Slack-Signature')).toBe('a');
    expect(headerValue({ 'X-Slack-Signature': 'b' }, 'x-slack-signature')).toBe('b');
    expect(headerValue({ 'X-SLACK-SIGNATURE': 'c' }, 'x-slack-signature')).toBe('c');
  });

  it('treats a repeated header as absent', () => {
    expect(headerValue({ 'x-line-signature': ['a', 'b'] }, 'x-line-signature')).toBeUndefined();
    expect(headerValue({ 'x-line-signature': ['a'] }, 'x-line-signature')).toBe('a');
  });
});
