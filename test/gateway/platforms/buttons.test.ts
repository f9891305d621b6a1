import { describe, expect, it } from 'vitest';
import { MAX_BUTTONS, fit, replyButtons, rows, splitTail, wireId, withNumberedList } from '../../../gateway/platforms/buttons.ts';

describe('reading a reply’s buttons', () => {
  it('fills in id and value from the label, and keeps what the bot gave', () => {
    expect(replyButtons({ text: 'x', buttons: ['Yes', { label: 'No', id: 'no' }, { label: 'Maybe', id: 'm', value: 'perhaps' }, { label: 'Later', value: '' }] })).toEqual({
      buttons: [
        { label: 'Yes', id: 'Yes', value: 'Yes' },
        { label: 'No', id: 'no', value: 'No' },
        { label: 'Maybe', id: 'm', value: 'perhaps' },
        { label: 'Later', id: 'Later', value: '' },
      ],
    });
  });

  it.each([
    ['no field', { text: 'x' }],
    ['null', { text: 'x', buttons: null }],
    ['an empty array', { text: 'x', buttons: [] }],
    ['no data at all', undefined],
  ])('finds none, and no problem, in %s', (_, data) => {
    expect(replyButtons(data)).toEqual({ buttons: [] });
  });

  it('puts a label on one line, and defaults id and value to the label as shown', () => {
    expect(replyButtons({ buttons: ['  Two\nlines\t here ', { label: 'A\nB', id: ' kept as given ' }] }).buttons).toEqual([
      { label: 'Two lines here', id: 'Two lines here', value: 'Two lines here' },
      { label: 'A B', id: ' kept as given ', value: 'A B' },
    ]);
  });

  it.each([
    ['a string', 'Yes', 'not_an_array', 'buttons'],
    ['an object', { label: 'Yes' }, 'not_an_array', 'buttons'],
    ['a number item', [1], 'bad_button', 'buttons[0]'],
    ['a null item', ['ok', null], 'bad_button', 'buttons[1]'],
    ['an array item', [['Yes']], 'bad_button', 'buttons[0]'],
    ['a blank label', ['ok', '  '], 'bad_button', 'buttons[1]'],
    ['an object without a label', [{ id: 'a' }], 'bad_button', 'buttons[0].label'],
    ['a numeric label', [{ label: 7 }], 'bad_button', 'buttons[0].label'],
    ['a blank object label', [{ label: '\n' }], 'bad_button', 'buttons[0].label'],
    ['an empty id', [{ label: 'a', id: '' }], 'bad_button', 'buttons[0].id'],
    ['a numeric id', [{ label: 'a', id: 3 }], 'bad_button', 'buttons[0].id'],
    ['a numeric value', [{ label: 'a', value: 3 }], 'bad_button', 'buttons[0].value'],
    ['two buttons with one id', ['a', { label: 'b', id: 'a' }], 'duplicate_id', 'buttons[1].id'],
    ['two alike labels', ['Yes', 'Yes'], 'duplicate_id', 'buttons[1].id'],
    ['too many', Array.from({ length: MAX_BUTTONS + 1 }, (_, i) => `b${i}`), 'too_many', 'buttons'],
  ])('refuses %s, naming the field and never its text', (_, buttons, code, path) => {
    const out = replyButtons({ text: 'secret words', buttons });
    expect(out.buttons).toEqual([]);
    expect(out.problem).toMatchObject({ code, path });
    expect(JSON.stringify(out.problem)).not.toMatch(/secret|Yes/);
  });

  it('takes up to the limit', () => {
    expect(replyButtons({ buttons: Array.from({ length: MAX_BUTTONS }, (_, i) => `b${i}`) }).buttons).toHaveLength(MAX_BUTTONS);
  });
});

describe('fitting labels', () => {
  it.each([
    ['a label that fits', 'Yes please', 20, 'Yes please'],
    ['one exactly at the limit', 'x'.repeat(20), 20, 'x'.repeat(20)],
    ['one a character over', 'x'.repeat(21), 20, `${'x'.repeat(19)}…`],
    ['one that would end in a space', 'Choose the blue one please', 12, 'Choose the…'],
    ['emoji, never halved', '👍🏽👍🏽👍🏽', 5, '👍🏽…'],
    ['a family emoji, whole or not at all', 'a👨‍👩‍👧', 6, 'a…'],
  ])('cuts %s', (_, label, max, out) => {
    expect(fit(label, max)).toBe(out);
    expect(fit(label, max).length).toBeLessThanOrEqual(max);
  });
});

describe('button ids on the wire', () => {
  it('keeps an id that fits, and replaces a longer one with a short digest', () => {
    const long = 'order:'.padEnd(65, 'x');
    expect(wireId('telegram', 'order:42')).toBe('order:42');
    expect(wireId('telegram', 'x'.repeat(64))).toBe('x'.repeat(64));
    expect(wireId('telegram', long)).toMatch(/^#[A-Za-z0-9_-]{27}$/);
    expect(wireId('telegram', long)).toBe(wireId('telegram', long));
    expect(wireId('telegram', long)).not.toBe(wireId('telegram', `${long}y`));
    // The same id fits another platform's larger limit.
    expect(wireId('slack', long)).toBe(long);
  });

  it('counts bytes: 22 three-byte characters are 66 bytes, past Telegram’s 64', () => {
    expect(wireId('telegram', '選'.repeat(21))).toBe('選'.repeat(21));
    expect(wireId('telegram', '選'.repeat(22))).toMatch(/^#/);
  });
});

describe('what the renderings share', () => {
  it('lists buttons by number under the text', () => {
    expect(withNumberedList('Pick one', [{ label: 'Red', id: 'r', value: 'r' }, { label: 'Green', id: 'g', value: 'g' }])).toBe('Pick one\n\n1. Red\n2. Green');
  });

  it('makes rows', () => {
    expect(rows([1, 2, 3, 4, 5, 6, 7], 3)).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
  });

  it.each([
    ['text that fits', 'short text', 20, '', 'short text'],
    ['at a line break', `${'a'.repeat(30)}\n${'b'.repeat(15)}`, 20, 'a'.repeat(30), 'b'.repeat(15)],
    ['at a space', `${'a'.repeat(30)} ${'b'.repeat(15)}`, 20, 'a'.repeat(30), 'b'.repeat(15)],
    ['hard, with no break in reach', 'a'.repeat(30), 20, 'a'.repeat(10), 'a'.repeat(20)],
    ['not inside a surrogate pair', `${'a'.repeat(10)}${'😀'.repeat(10)}`, 19, `${'a'.repeat(10)}😀`, '😀'.repeat(9)],
  ])('splits the tail off %s', (_, text, max, head, tail) => {
    const out = splitTail(text, max);
    expect(out).toEqual({ head, tail });
    expect(out.tail.length).toBeLessThanOrEqual(max);
  });
});
