/**
 * Request plumbing for the designer: a small client cache keyed by request body, and a
 * per-operation "latest only" gate that cancels the previous request of an operation.
 */

/** The last `capacity` answers by key (least recently used first out); failures are not kept. */
export class RequestCache<T> {
  private readonly entries = new Map<string, Promise<T>>();
  hits = 0;
  misses = 0;

  constructor(readonly capacity = 32) {}

  get size(): number {
    return this.entries.size;
  }

  /** The answer for `key`, asked with `load` unless known (a failed load is forgotten). */
  get(key: string, load: () => Promise<T>): Promise<T> {
    const known = this.entries.get(key);
    if (known) {
      this.hits++;
      this.entries.delete(key);
      this.entries.set(key, known); // most recently used last
      return known;
    }
    this.misses++;
    const value = load();
    this.entries.set(key, value);
    value.catch(() => {
      if (this.entries.get(key) === value) this.entries.delete(key);
    });
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    return value;
  }
}

/** A stable key of a JSON body: object keys sorted, so that equal bodies share a key. */
export function bodyKey(value: unknown): string {
  return JSON.stringify(value, (_, v) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]))
      : v,
  );
}

/** Calls `fn` once `wait` ms have passed without another call (the last arguments win). */
export function debounce<A extends unknown[]>(fn: (...args: A) => void, wait: number): (...args: A) => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
}
