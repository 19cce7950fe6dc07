// A store opened with its passphrase: the config, the key files, and encrypted objects
// (docs/ARCHITECTURE.md, "Store format (version 2)").
import { EpochfsError } from '../util/errors.js';
import { ObjectNotFoundError, type Backend, type ObjectKind } from './backend.js';
import {
  AuthenticationError, KDF_INTERACTIVE, KEY_BYTES, NONCE_BYTES, SALT_BYTES, SUBKEY_BLOB_IDS, SUBKEY_OBJECTS, TAG_BYTES,
  hash256, open, passphraseKey, randomBytes, seal, sealInto, subkey,
} from './crypto.js';
import type { BlobType } from './pack.js';

export const STORE_FORMAT = 'epochfs-store';
export const STORE_VERSION = 2;

export interface StoreConfig {
  format: typeof STORE_FORMAT;
  version: number;
  id: string;
  created: string;
  chunkSize: number;
  packSize: number;
}

interface KeyFile {
  /** BLAKE2b-256 of the config's bytes: a damaged config is told apart from a wrong passphrase */
  config: string;
  kdf: 'argon2id13';
  opslimit: number;
  memlimit: number;
  salt: string;
  nonce: string;
  sealed: string;
  created: string;
}

export type EncryptedKind = 'index' | 'epochs';

// issue 8: hostile store — objects are read whole before they can be authenticated, so every
// kind's size is bounded by what the format can produce, and checked before it is read.
/** What sealing adds to a plaintext. */
export const SEAL_BYTES = NONCE_BYTES + TAG_BYTES;

/** what a blob's seal binds it to: its id */
const blobAd = (id: string): string => `epochfs/v1/blob/${id}`;
/** config and key files: a few hundred bytes */
const MAX_PLAIN_OBJECT = 1 << 20;
/** index objects and epoch records (the writer splits index objects well below it) */
export const MAX_JSON_OBJECT = 64 << 20;
/** a tree blob: one directory of about a million entries */
export const MAX_TREE_BLOB = 256 << 20;
/** a pack header (the writer closes packs at MAX_BLOBS_PER_PACK blobs, well below it) */
export const MAX_PACK_HEADER = 64 << 20;
/** the chunk size of a new store (docs/ARCHITECTURE.md, "Chunk size") */
export const DEFAULT_CHUNK_SIZE = 1 << 20;
/** what a config may ask for: chunks and packs are read whole */
export const CHUNK_SIZES = { min: 4096, max: 64 << 20 };
const PACK_SIZES = { min: 4096, max: 1 << 30 };

/** The object's bytes, refused unread (stat) or read (get) when larger than `max` (EOBJECTCORRUPT). */
export async function getBounded(backend: Backend, kind: ObjectKind, name: string, max: number): Promise<Buffer> {
  const tooBig = (size: number) => new EpochfsError('EOBJECTCORRUPT', `${kind}/${name} of the store at ${backend.location} is ${size} bytes, more than the ${max} its format allows`);
  const st = await backend.stat(kind, name);
  if (st && st.size > max) throw tooBig(st.size);
  const bytes = await backend.get(kind, name);
  if (bytes.length > max) throw tooBig(bytes.length);
  return bytes;
}

function checkSize(backend: Backend, field: string, value: unknown, range: { min: number; max: number }): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < range.min || value > range.max) {
    throw new EpochfsError('EOBJECTCORRUPT', `config/config of the store at ${backend.location} has a bad ${field} (${String(value)}; ${range.min} to ${range.max})`);
  }
}

// Store format v2 (issue 8: hostile store): the sealed box holds the master secret AND the
// config's hash, so a config changed in the store — even with the key file's plaintext `config`
// field fixed to match — fails once the passphrase has opened the box, as EOBJECTCORRUPT. (The hash
// is sealed, not put in the additional data: there a changed config would fail like a wrong
// passphrase.) The additional data is constant; the sealed hash covers the store id too.
const KEY_AD = 'epochfs key v2';

async function sealMaster(master: Buffer, passphrase: Buffer, configHash: string, kdf = KDF_INTERACTIVE): Promise<KeyFile> {
  const salt = randomBytes(SALT_BYTES);
  const key = await passphraseKey(passphrase, salt, kdf.opslimit, kdf.memlimit);
  const sealed = seal(key, Buffer.concat([master, Buffer.from(configHash, 'hex')]), KEY_AD);
  return {
    config: configHash, kdf: 'argon2id13', ...kdf, salt: salt.toString('base64'),
    nonce: sealed.subarray(0, NONCE_BYTES).toString('base64'), sealed: sealed.subarray(NONCE_BYTES).toString('base64'),
    created: new Date().toISOString(),
  };
}

/** The master secret and the config hash sealed with it; undefined for a wrong passphrase. */
async function unsealMaster(file: KeyFile, passphrase: Buffer): Promise<{ master: Buffer; configHash: string } | undefined> {
  const key = await passphraseKey(passphrase, Buffer.from(file.salt, 'base64'), file.opslimit, file.memlimit);
  let plain: Buffer;
  try {
    plain = open(key, Buffer.concat([Buffer.from(file.nonce, 'base64'), Buffer.from(file.sealed, 'base64')]), KEY_AD);
  } catch (err) {
    if (err instanceof AuthenticationError) return undefined;
    throw err;
  }
  return { master: plain.subarray(0, KEY_BYTES), configHash: plain.subarray(KEY_BYTES).toString('hex') };
}

/** Argon2id costs a key file may ask for: more would let a store exhaust the machine. */
const KDF_LIMITS = { opslimit: 16, memlimit: 1 << 30 };

function isSoundKeyFile(file: KeyFile): boolean {
  const isText = (v: unknown) => typeof v === 'string';
  return typeof file === 'object' && file !== null && file.kdf === 'argon2id13' && isText(file.config) && isText(file.salt) && isText(file.nonce) && isText(file.sealed)
    && Number.isSafeInteger(file.opslimit) && file.opslimit >= 1 && file.opslimit <= KDF_LIMITS.opslimit
    && Number.isSafeInteger(file.memlimit) && file.memlimit >= 8192 && file.memlimit <= KDF_LIMITS.memlimit;
}

async function readConfig(backend: Backend): Promise<{ config: StoreConfig; hash: string }> {
  let raw: Buffer;
  try {
    raw = await getBounded(backend, 'config', 'config', MAX_PLAIN_OBJECT);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw new EpochfsError('ENOSTORE', `no epochfs store at ${backend.location}`);
    throw err;
  }
  let config: StoreConfig;
  try {
    config = JSON.parse(raw.toString());
  } catch {
    throw new EpochfsError('EOBJECTCORRUPT', `store config at ${backend.location} is not valid JSON`);
  }
  if (typeof config !== 'object' || config === null || config.format !== STORE_FORMAT) throw new EpochfsError('ENOSTORE', `${backend.location} is not an epochfs store`);
  if (config.version === 1) {
    throw new EpochfsError('ESTOREVERSION', `${backend.location}: store format v1, whose config is not authenticated; this epochfs reads v2: restore with the epochfs that wrote it, then create a new store with epochfs init`);
  }
  if (config.version !== STORE_VERSION) {
    throw new EpochfsError('ESTOREVERSION', `store format v${config.version}; this epochfs reads v${STORE_VERSION}`);
  }
  checkSize(backend, 'chunkSize', config.chunkSize, CHUNK_SIZES);
  checkSize(backend, 'packSize', config.packSize, PACK_SIZES);
  return { config, hash: hash256(raw).toString('hex') };
}

/** A key file's name is the hash of its bytes, like every other object's. */
function keyFileName(bytes: Buffer): string {
  return hash256(bytes).toString('hex');
}

/** A key file, or undefined when it is damaged: larger than one can be, not matching its name, not JSON. */
async function soundKeyFile(backend: Backend, name: string): Promise<KeyFile | undefined> {
  let bytes: Buffer;
  try {
    bytes = await getBounded(backend, 'keys', name, MAX_PLAIN_OBJECT);
  } catch (err) {
    if (err instanceof EpochfsError && err.code === 'EOBJECTCORRUPT') return undefined;
    throw err;
  }
  if (keyFileName(bytes) !== name) return undefined;
  try {
    const file = JSON.parse(bytes.toString()) as KeyFile;
    return isSoundKeyFile(file) ? file : undefined;
  } catch {
    return undefined;
  }
}

export class Repository {
  private readonly objectKey: Buffer;
  private readonly blobIdKey: Buffer;

  private constructor(readonly backend: Backend, readonly config: StoreConfig, master: Buffer) {
    this.objectKey = subkey(master, SUBKEY_OBJECTS);
    this.blobIdKey = subkey(master, SUBKEY_BLOB_IDS);
  }

  /** Creates a new store in an empty backend. */
  static async init(backend: Backend, passphrase: Buffer, opts: { kdf?: typeof KDF_INTERACTIVE; chunkSize?: number } = {}): Promise<Repository> {
    if (await backend.stat('config', 'config')) throw new EpochfsError('ESTOREEXISTS', `a store already exists at ${backend.location}`);
    const config: StoreConfig = {
      format: STORE_FORMAT, version: STORE_VERSION, id: randomBytes(32).toString('hex'),
      created: new Date().toISOString(), chunkSize: opts.chunkSize ?? DEFAULT_CHUNK_SIZE, packSize: 16 << 20,
    };
    const master = randomBytes(KEY_BYTES);
    const configBytes = Buffer.from(JSON.stringify(config, null, 2));
    const keyBytes = Buffer.from(JSON.stringify(await sealMaster(master, passphrase, hash256(configBytes).toString('hex'), opts.kdf)));
    // The key goes first: a config without a key would be a store nobody can open.
    await backend.put('keys', keyFileName(keyBytes), keyBytes);
    await backend.put('config', 'config', configBytes);
    return new Repository(backend, config, master);
  }

  /** Opens a store: any key file the passphrase unlocks will do. */
  static async open(backend: Backend, passphrase: Buffer): Promise<Repository> {
    const { config, hash } = await readConfig(backend);
    const damaged: string[] = [];
    let sound = 0;
    for await (const name of backend.list('keys')) {
      const file = await soundKeyFile(backend, name);
      if (!file) {
        damaged.push(name); // another key file may still open the store
        continue;
      }
      if (file.config !== hash) throw new EpochfsError('EOBJECTCORRUPT', `config/config of the store at ${backend.location} is damaged (it does not match keys/${name})`);
      sound++;
      const opened = await unsealMaster(file, passphrase);
      if (!opened) continue;
      if (opened.configHash !== hash) throw new EpochfsError('EOBJECTCORRUPT', `config/config of the store at ${backend.location} has been altered (it fails authentication with keys/${name})`);
      return new Repository(backend, config, opened.master);
    }
    if (sound === 0 && damaged.length) {
      throw new EpochfsError('EOBJECTCORRUPT', `every key file of the store at ${backend.location} is damaged: ${damaged.map((n) => `keys/${n}`).join(', ')}`);
    }
    throw new EpochfsError('EBADPASS', `wrong passphrase for the store at ${backend.location}`);
  }

  /** Key files whose bytes do not match their names. */
  async damagedKeys(): Promise<string[]> {
    const out: string[] = [];
    for await (const name of this.backend.list('keys')) if (!(await soundKeyFile(this.backend, name))) out.push(name);
    return out;
  }

  /** The largest sealed blob of a type: a chunk, or a tree. */
  maxSealedBlob(type: BlobType): number {
    return (type === 'data' ? this.config.chunkSize : MAX_TREE_BLOB) + SEAL_BYTES;
  }

  /** The largest pack: blobs up to packSize, the one that crossed it, the sealed header, its length. */
  get maxPackSize(): number {
    return this.config.packSize + this.maxSealedBlob('tree') + MAX_PACK_HEADER + SEAL_BYTES + 4;
  }

  /** Keyed BLAKE2b-256 of a blob's plaintext (hex). */
  blobId(plaintext: Buffer): string {
    return hash256(plaintext, this.blobIdKey).toString('hex');
  }

  sealBlob(id: string, plaintext: Buffer): Buffer {
    return seal(this.objectKey, plaintext, blobAd(id));
  }

  /** sealBlob() into `out` (SEAL_BYTES longer than the plaintext): a pack seals its blobs in place. */
  sealBlobInto(id: string, plaintext: Buffer, out: Buffer): void {
    sealInto(this.objectKey, plaintext, blobAd(id), out);
  }

  openBlob(id: string, sealed: Buffer, where: string): Buffer {
    try {
      return open(this.objectKey, sealed, blobAd(id));
    } catch (err) {
      if (err instanceof AuthenticationError) throw new EpochfsError('EOBJECTCORRUPT', `blob ${id} in ${where} fails authentication`);
      throw err;
    }
  }

  /** openBlob, plus the check that the plaintext hashes to the blob's id. */
  openBlobChecked(id: string, sealed: Buffer, where: string): Buffer {
    const plain = this.openBlob(id, sealed, where);
    if (this.blobId(plain) !== id) throw new EpochfsError('EOBJECTCORRUPT', `blob ${id} in ${where} does not match its id`);
    return plain;
  }

  /** A pack header: sealed like an object of kind `packs`. */
  sealHeader(kind: 'packs', plaintext: Buffer): Buffer {
    return seal(this.objectKey, plaintext, `epochfs/v1/${kind}`);
  }

  openHeader(kind: 'packs', sealed: Buffer, where: string): Buffer {
    try {
      return open(this.objectKey, sealed, `epochfs/v1/${kind}`);
    } catch (err) {
      if (err instanceof AuthenticationError) throw new EpochfsError('EOBJECTCORRUPT', `${where} has a header that fails authentication`);
      throw err;
    }
  }

  /** Encrypts and stores an object; its name is the hash of the stored bytes. */
  async putObject(kind: EncryptedKind, plaintext: Buffer): Promise<string> {
    const sealed = seal(this.objectKey, plaintext, `epochfs/v1/${kind}`);
    const name = hash256(sealed).toString('hex');
    await this.backend.put(kind, name, sealed);
    return name;
  }

  /** Reads, checks and decrypts an object; a damaged one is an error that names it. */
  async getObject(kind: EncryptedKind, name: string): Promise<Buffer> {
    let sealed: Buffer;
    try {
      sealed = await getBounded(this.backend, kind, name, MAX_JSON_OBJECT + SEAL_BYTES);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new EpochfsError('EOBJECTMISSING', `${kind}/${name} is missing from the store`);
      throw err;
    }
    if (hash256(sealed).toString('hex') !== name) throw new EpochfsError('EOBJECTCORRUPT', `${kind}/${name} is damaged (its content does not match its name)`);
    try {
      return open(this.objectKey, sealed, `epochfs/v1/${kind}`);
    } catch (err) {
      if (err instanceof AuthenticationError) throw new EpochfsError('EOBJECTCORRUPT', `${kind}/${name} fails authentication`);
      throw err;
    }
  }
}
