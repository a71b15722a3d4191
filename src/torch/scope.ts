// Memory scopes: libtorch memory is invisible to the JS garbage collector, so tensors
// are freed deterministically. Every tensor made inside tidy() is disposed when it
// returns, except the tensors in its result and those passed to keep().

export interface Disposable {
  dispose(): void;
  readonly isDisposed: boolean;
  /** Hands the object to the GC safety net (it now outlives every scope). */
  guard?(): void;
}

interface Scope {
  tracked: Disposable[];
}

const scopes: Scope[] = [];
const kept = new WeakSet<Disposable>();

/** Called by every new tensor: registers it with the innermost open scope; false if none is open. */
export function track(t: Disposable): boolean {
  const top = scopes[scopes.length - 1];
  if (top === undefined) return false;
  top.tracked.push(t);
  return true;
}

/**
 * Excludes a tensor from disposal by the enclosing scopes: it is then the caller's to
 * free, with the garbage collector as a safety net.
 */
export function keep<T extends Disposable>(t: T): T {
  kept.add(t);
  t.guard?.();
  return t;
}

function collect(value: unknown, out: Set<Disposable>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 4) return;
  if (isDisposable(value)) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, out, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, depth + 1);
  }
}

function isDisposable(v: object): v is Disposable {
  return typeof (v as Disposable).dispose === 'function' && 'isDisposed' in v;
}

/**
 * Runs fn and frees every tensor created during it, except those it returns (directly,
 * or inside arrays, Maps and plain objects) and those passed to keep(). Returned tensors
 * move to the enclosing scope. Async functions are not supported: a scope must not span
 * an await, since other work would run inside it.
 */
export function tidy<R>(fn: () => R): R {
  const scope: Scope = { tracked: [] };
  scopes.push(scope);
  let result: R;
  try {
    result = fn();
  } catch (err) {
    scopes.pop();
    release(scope, new Set());
    throw err;
  }
  scopes.pop();
  if (result instanceof Promise) {
    release(scope, new Set());
    throw new TypeError('tidy(): the function returned a Promise; scopes cannot span an await');
  }
  const survivors = new Set<Disposable>();
  collect(result, survivors);
  const parent = scopes[scopes.length - 1];
  // Only tensors this scope made move up; a tensor from outside stays its owner's.
  for (const t of scope.tracked) {
    if (!survivors.has(t) || kept.has(t)) continue;
    if (parent !== undefined) parent.tracked.push(t);
    else t.guard?.(); // leaving the last scope: from now on the GC is its safety net
  }
  release(scope, survivors);
  return result;
}

function release(scope: Scope, survivors: Set<Disposable>): void {
  for (const t of scope.tracked) {
    if (!survivors.has(t) && !kept.has(t) && !t.isDisposed) t.dispose();
  }
  scope.tracked.length = 0;
}

/** Number of scopes open right now (for tests and diagnostics). */
export function scopeDepth(): number {
  return scopes.length;
}
