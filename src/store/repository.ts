// A store opened with its passphrase: the config, the key files, and encrypted objects
// (docs/ARCHITECTURE.md, "Store format (version 1)").
import { EpochfsError } from '../util/errors.js';
import { ObjectNotFoundError, type Backend } from './backend.js';
import {
  AuthenticationError, KDF_INTERACTIVE, KEY_BYTES, NONCE_BYTES, SALT_BYTES, SUBKEY_BLOB_IDS, SUBKEY_OBJECTS,
  hash256, open, passphraseKey, randomBytes, seal, subkey,
} from './crypto.js';

export const STORE_FORMAT = 'epochfs-store';
export const STORE_VERSION = 1;

export interface StoreConfig {
  format: typeof STORE_FORMAT;
  version: number;
  id: string;
  created: string;
  chunkSize: number;
  packSize: number;
}

interface KeyFile {
  kdf: 'argon2id13';
  opslimit: number;
  memlimit: number;
  salt: string;
  nonce: string;
  sealed: string;
  created: string;
}

export type EncryptedKind = 'index' | 'epochs';

function keyAd(storeId: string): Buffer {
  return Buffer.from(`epochfs key v1 ${storeId}`);
}

async function sealMaster(master: Buffer, passphrase: Buffer, storeId: string, kdf = KDF_INTERACTIVE): Promise<KeyFile> {
  const salt = randomBytes(SALT_BYTES);
  const key = await passphraseKey(passphrase, salt, kdf.opslimit, kdf.memlimit);
  const sealed = seal(key, master, keyAd(storeId).toString());
  return {
    kdf: 'argon2id13', ...kdf, salt: salt.toString('base64'),
    nonce: sealed.subarray(0, NONCE_BYTES).toString('base64'), sealed: sealed.subarray(NONCE_BYTES).toString('base64'),
    created: new Date().toISOString(),
  };
}

async function unsealMaster(file: KeyFile, passphrase: Buffer, storeId: string): Promise<Buffer | undefined> {
  const key = await passphraseKey(passphrase, Buffer.from(file.salt, 'base64'), file.opslimit, file.memlimit);
  try {
    return open(key, Buffer.concat([Buffer.from(file.nonce, 'base64'), Buffer.from(file.sealed, 'base64')]), keyAd(storeId).toString());
  } catch (err) {
    if (err instanceof AuthenticationError) return undefined;
    throw err;
  }
}

async function readConfig(backend: Backend): Promise<StoreConfig> {
  let raw: Buffer;
  try {
    raw = await backend.get('config', 'config');
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
  if (config.format !== STORE_FORMAT) throw new EpochfsError('ENOSTORE', `${backend.location} is not an epochfs store`);
  if (config.version !== STORE_VERSION) {
    throw new EpochfsError('ESTOREVERSION', `store format v${config.version}; this epochfs reads v${STORE_VERSION}`);
  }
  return config;
}

export class Repository {
  private readonly objectKey: Buffer;
  private readonly blobIdKey: Buffer;

  private constructor(readonly backend: Backend, readonly config: StoreConfig, master: Buffer) {
    this.objectKey = subkey(master, SUBKEY_OBJECTS);
    this.blobIdKey = subkey(master, SUBKEY_BLOB_IDS);
  }

  /** Creates a new store in an empty backend. */
  static async init(backend: Backend, passphrase: Buffer, opts: { kdf?: typeof KDF_INTERACTIVE } = {}): Promise<Repository> {
    if (await backend.stat('config', 'config')) throw new EpochfsError('ESTOREEXISTS', `a store already exists at ${backend.location}`);
    const config: StoreConfig = {
      format: STORE_FORMAT, version: STORE_VERSION, id: randomBytes(32).toString('hex'),
      created: new Date().toISOString(), chunkSize: 1 << 20, packSize: 16 << 20,
    };
    const master = randomBytes(KEY_BYTES);
    const keyFile = await sealMaster(master, passphrase, config.id, opts.kdf);
    // The key goes first: a config without a key would be a store nobody can open.
    await backend.put('keys', randomBytes(32).toString('hex'), Buffer.from(JSON.stringify(keyFile)));
    await backend.put('config', 'config', Buffer.from(JSON.stringify(config, null, 2)));
    return new Repository(backend, config, master);
  }

  /** Opens a store: any key file the passphrase unlocks will do. */
  static async open(backend: Backend, passphrase: Buffer): Promise<Repository> {
    const config = await readConfig(backend);
    for await (const name of backend.list('keys')) {
      let file: KeyFile;
      try {
        file = JSON.parse((await backend.get('keys', name)).toString());
      } catch {
        continue; // a damaged key file: another one may still open the store
      }
      const master = await unsealMaster(file, passphrase, config.id);
      if (master) return new Repository(backend, config, master);
    }
    throw new EpochfsError('EBADPASS', `wrong passphrase for the store at ${backend.location}`);
  }

  /** Keyed BLAKE2b-256 of a blob's plaintext (hex). */
  blobId(plaintext: Buffer): string {
    return hash256(plaintext, this.blobIdKey).toString('hex');
  }

  sealBlob(id: string, plaintext: Buffer): Buffer {
    return seal(this.objectKey, plaintext, `epochfs/v1/blob/${id}`);
  }

  openBlob(id: string, sealed: Buffer, where: string): Buffer {
    try {
      return open(this.objectKey, sealed, `epochfs/v1/blob/${id}`);
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
      sealed = await this.backend.get(kind, name);
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
