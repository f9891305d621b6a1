/** One problem found in an event or a message, with the field it concerns (`id`, `[2].time`, `header ce-time`). */
export interface FieldError {
  code: string;
  field: string;
  message: string;
}

/**
 * Why a message could not be read as CloudEvents. `status` is the HTTP status a receiver answers with:
 * 400 for an invalid event, 415 for a media type that is not a CloudEvents mode or format this codec reads.
 */
export class CloudEventError extends Error {
  readonly code: string;
  readonly status: 400 | 415;
  readonly errors: readonly FieldError[];

  constructor(status: 400 | 415, code: string, message: string, errors: readonly FieldError[] = []) {
    super(message);
    this.name = 'CloudEventError';
    this.status = status;
    this.code = code;
    this.errors = errors;
  }

  static invalid(errors: readonly FieldError[]): CloudEventError {
    const first = errors[0];
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
    return new CloudEventError(400, first?.code ?? 'invalid_event', `${first?.field}: ${first?.message}${more}`, errors);
  }
}
