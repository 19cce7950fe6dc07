// The shipper's persistent state (<state>/shipper/state.json, written atomically after each epoch):
// how far the journal is shipped, the last epoch, and the caches the next epoch reuses.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildCaches, CachedContent, TreeSummary } from '../store/snapshot.js';
import type { ResidentJson } from './sparse.js';

/** 2: the shadows are sparse (src/shipper/sparse.ts); a version 1 state dir's full shadows are punched at start. */
export const SHIPPER_STATE_VERSION = 2;

export interface VolumeCaches {
  trees: [string, TreeSummary][];
  contents: [string, CachedContent][];
  /** shadow chunks kept resident, least recently used first (src/shipper/sparse.ts) */
  resident?: ResidentJson;
}

export interface ShipperState {
  version: number;
  store: string;
  group: string;
  /** every record up to here is in the last epoch */
  cursor: number;
  lastEpoch: string | null;
  /** the volumes in the last epoch, with what their next epoch may reuse */
  volumes: { [name: string]: VolumeCaches };
  /** volumes whose base was being read at the last epoch (name -> backing dir): read again, whole */
  bases?: { [name: string]: string };
}

export function shipperDir(stateDir: string): string {
  return join(stateDir, 'shipper');
}

/** A volume's shadow copy: the volume as of the shipper's cursor. */
export function shadowDir(stateDir: string, vol: string): string {
  return join(shipperDir(stateDir), 'shadow', vol);
}

/** Present while the shadow copy is being advanced: if found at start, the shadow is not trusted. */
export function shadowBusyMarker(stateDir: string): string {
  return join(shipperDir(stateDir), 'shadow.busy');
}

export function loadShipperState(stateDir: string): ShipperState | undefined {
  const path = join(shipperDir(stateDir), 'state.json');
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as ShipperState;
}

export function saveShipperState(stateDir: string, state: ShipperState): void {
  const dir = shipperDir(stateDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, 'state.json.tmp');
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(state));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, 'state.json'));
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

export function cachesOf(v: VolumeCaches | undefined): BuildCaches {
  return { trees: new Map(v?.trees ?? []), contents: new Map(v?.contents ?? []) };
}

export function cachesToJson(c: BuildCaches, resident: ResidentJson): VolumeCaches {
  return { trees: [...c.trees], contents: [...c.contents], ...(resident.length ? { resident } : {}) };
}
