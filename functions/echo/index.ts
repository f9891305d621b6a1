import { defineBot } from 'knbot';

/** Replies with the text it got. */
export default defineBot({
  onMessage(msg) {
    return msg.text;
  },
});
