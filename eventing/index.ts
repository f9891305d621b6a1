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
export { compileCesql, evaluateCesql, type CesqlError, type CesqlErrorKind, type CesqlResult, type CompiledCesql } from './cesql/index.ts';
