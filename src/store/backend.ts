// A store backend: immutable objects by kind and name (docs/ARCHITECTURE.md, "Store format").
// Every implementation runs test/store/backend-conformance.ts.

export type ObjectKind = 'config' | 'keys' | 'packs' | 'index' | 'epochs';
export const OBJECT_KINDS: readonly ObjectKind[] = ['config', 'keys', 'packs', 'index', 'epochs'];

export interface Backend {
  /**
   * Stores an object atomically (all or nothing is ever visible); refuses to overwrite one. Once the
   * promise settles the backend MUST NOT read `data` again: the caller reuses the buffer (a pack's).
   */
  put(kind: ObjectKind, name: string, data: Buffer): Promise<void>;
  /** The object's bytes; ObjectNotFoundError when it does not exist. */
  get(kind: ObjectKind, name: string): Promise<Buffer>;
  /** `length` bytes of an object from `offset` (a blob inside a pack); ObjectNotFoundError when absent. */
  getRange(kind: ObjectKind, name: string, offset: number, length: number): Promise<Buffer>;
  /** Its size, or undefined when it does not exist. */
  stat(kind: ObjectKind, name: string): Promise<{ size: number } | undefined>;
  /** Names of every object of a kind, in no particular order. */
  list(kind: ObjectKind): AsyncIterable<string>;
  /** Removes an object; removing a missing one is not an error. */
  delete(kind: ObjectKind, name: string): Promise<void>;
  /**
   * Checks that the store takes writes now (writes something outside every kind and removes it);
   * rejects with the reason. A degraded group asks before it resyncs (docs/ARCHITECTURE.md).
   */
  probe(): Promise<void>;
  /** A human-readable location, for messages. */
  readonly location: string;
}

export class ObjectNotFoundError extends Error {
  readonly code = 'EOBJECTNOTFOUND';
  constructor(readonly kind: ObjectKind, readonly objectName: string) {
    super(`${kind}/${objectName} does not exist`);
  }
}

export class ObjectExistsError extends Error {
  readonly code = 'EOBJECTEXISTS';
  constructor(readonly kind: ObjectKind, readonly objectName: string) {
    super(`${kind}/${objectName} already exists`);
  }
}

/** Object names: lower-case hex (ids), or 'config'. Anything else could escape a backend's namespace. */
export function checkName(name: string): void {
  if (!/^([0-9a-f]{2,128}|config)$/.test(name)) throw new Error(`invalid object name '${name}'`);
}
