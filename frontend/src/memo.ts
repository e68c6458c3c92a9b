/** Memoizing async loaders: each distinct argument list is loaded once; a failed load is asked again. */

/** `load` memoized by its arguments (compared as JSON); a rejected load is forgotten. */
export function memo<A extends unknown[], T>(load: (...args: A) => Promise<T>): (...args: A) => Promise<T> {
  const memory = new Map<string, Promise<T>>();
  return (...args) => {
    const key = JSON.stringify(args);
    let value = memory.get(key);
    if (!value) {
      value = load(...args);
      value.catch(() => memory.delete(key));
      memory.set(key, value);
    }
    return value;
  };
}
