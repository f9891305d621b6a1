// The CloudEvents codec alone (event model, JSON format, HTTP binding): what a bot pod needs, without
// the routing code that the package's index also exports.
export type { CloudEvent, ExtensionValue } from './cloudevent.ts';
export { EXTENSION_NAME, SPEC_VERSION, extensionsOf, isTimestamp, isUriReference, validateCloudEvent } from './cloudevent.ts';
export { CloudEventError, type FieldError } from './errors.ts';
export { fromJsonObject, parseJsonEvent, toJsonObject } from './json-format.ts';
export { decodeHttp, hasCloudEventHeaders, type DecodedMessage, type IncomingHeaders } from './http/decode.ts';
export {
  BATCH_CONTENT_TYPE,
  STRUCTURED_CONTENT_TYPE,
  encodeBatch,
  encodeBinary,
  encodeBinaryText,
  encodeStructured,
  type BinaryMessage,
  type HttpMessage,
} from './http/encode.ts';
export { decodeHeaderValue, encodeHeaderValue } from './http/header-value.ts';
export { contentModeOf, parseMediaType, type ContentMode, type MediaType } from './http/media-type.ts';
