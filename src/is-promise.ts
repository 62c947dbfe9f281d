/**
 * Whether a value that may be ready now is still to come. Code on the request path
 * answers synchronously when nothing needs I/O and returns a promise otherwise.
 */
export function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as Promise<T> | undefined)?.then === 'function';
}
