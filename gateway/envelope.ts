// The envelope (DESIGN §7) is shared with a bot pod's own `/v1/ws`; it lives in runtime/, which the
// gateway may import and the runtime may not import back (DESIGN §2).
export { ENVELOPE_VERSION, type ClientFrame, type ErrorCode, FrameError, MAX_ID_LENGTH, MAX_NAME_LENGTH, errorBody, parseClientFrame } from '../runtime/envelope.ts';
