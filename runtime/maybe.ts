/** A value now, or later. The hot path stays synchronous when the bot and the store are. */
export type MaybePromise<T> = T | Promise<T>;

export function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as PromiseLike<unknown>).then === 'function';
}

/** `fn(value)`, at once when `value` is already there, after it resolves when it is a promise. */
export function andThen<T, U>(value: MaybePromise<T>, fn: (v: T) => MaybePromise<U>): MaybePromise<U> {
  return isPromiseLike(value) ? (value as Promise<T>).then(fn) : fn(value as T);
}
