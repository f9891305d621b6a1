/**
 * CESQL §3.3: the error types an engine must support. GenericError has no kind here because nothing
 * in this engine raises it.
 */
export type CesqlErrorKind = 'parse' | 'math' | 'cast' | 'missingAttribute' | 'missingFunction' | 'functionEvaluation';

export interface CesqlError {
  kind: CesqlErrorKind;
  message: string;
}

/**
 * CESQL §1: the primary output (a Boolean, an Integer or a String; undefined when the expression did
 * not parse) and the secondary output, the errors met on the way (§3.3).
 */
export interface CesqlResult {
  value: unknown;
  errors: CesqlError[];
}

/** An expression parsed once, to be evaluated against many events. */
export interface CompiledCesql {
  readonly expression: string;
  /** The parse errors; empty when the expression parsed. */
  readonly errors: readonly CesqlError[];
  evaluate(event: Record<string, unknown>): CesqlResult;
}

/** CESQL §3.1: a String, an Integer (a number within 32-bit two's complement range) or a Boolean. */
export type Value = string | number | boolean;

export type CesqlType = 'String' | 'Integer' | 'Boolean';

/** Where evaluation collects errors. The result under construction is the sink, so none is allocated. */
export interface ErrorSink {
  readonly errors: CesqlError[];
}

/** One compiled sub-expression: its value for an event, its errors pushed onto `out`. */
export type Evaluator = (event: Record<string, unknown>, out: ErrorSink) => Value;
