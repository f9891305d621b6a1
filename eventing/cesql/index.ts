export { compileCesql, evaluateCesql } from './compile.ts';
export type { CesqlError, CesqlErrorKind, CesqlResult, CompiledCesql } from './types.ts';
