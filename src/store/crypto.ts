// The store's cryptography (docs/ARCHITECTURE.md, "Store format"): Argon2id for passphrases,
// XChaCha20-Poly1305-IETF for every object, keyed BLAKE2b-256 for blob ids, unkeyed BLAKE2b-256
// for object names. Passphrase hashing runs off the event loop (crypto_pwhash_async).
import { createRequire } from 'node:module';

interface Sodium {
  randombytes_buf(buf: Buffer): void;
  crypto_pwhash_async(out: Buffer, passwd: Buffer, salt: Buffer, ops: number, mem: number, alg: number): Promise<void>;
  crypto_aead_xchacha20poly1305_ietf_encrypt(c: Buffer, m: Buffer, ad: Buffer | null, nsec: null, npub: Buffer, k: Buffer): number;
  crypto_aead_xchacha20poly1305_ietf_decrypt(m: Buffer, nsec: null, c: Buffer, ad: Buffer | null, npub: Buffer, k: Buffer): number;
  crypto_generichash(out: Buffer, input: Buffer, key?: Buffer): void;
  crypto_kdf_derive_from_key(sub: Buffer, id: number, ctx: Buffer, key: Buffer): void;
  crypto_pwhash_ALG_ARGON2ID13: number;
  crypto_pwhash_OPSLIMIT_INTERACTIVE: number;
  crypto_pwhash_MEMLIMIT_INTERACTIVE: number;
}

const require = createRequire(import.meta.url);
const sodium: Sodium = require('sodium-native');

export const KEY_BYTES = 32;
export const NONCE_BYTES = 24;
export const TAG_BYTES = 16;
export const SALT_BYTES = 16;
export const ID_BYTES = 32;

export const KDF_INTERACTIVE = {
  opslimit: sodium.crypto_pwhash_OPSLIMIT_INTERACTIVE,
  memlimit: sodium.crypto_pwhash_MEMLIMIT_INTERACTIVE,
};

export function randomBytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  sodium.randombytes_buf(b);
  return b;
}

export async function passphraseKey(passphrase: Buffer, salt: Buffer, opslimit: number, memlimit: number): Promise<Buffer> {
  const out = Buffer.alloc(KEY_BYTES);
  await sodium.crypto_pwhash_async(out, passphrase, salt, opslimit, memlimit, sodium.crypto_pwhash_ALG_ARGON2ID13);
  return out;
}

/** nonce | ciphertext | tag, bound to `ad`. */
export function seal(key: Buffer, plaintext: Buffer, ad: string): Buffer {
  const out = Buffer.alloc(NONCE_BYTES + plaintext.length + TAG_BYTES);
  sealInto(key, plaintext, ad, out);
  return out;
}

/** seal() into `out`, which is exactly NONCE_BYTES + plaintext.length + TAG_BYTES long (a pack's buffer). */
export function sealInto(key: Buffer, plaintext: Buffer, ad: string, out: Buffer): void {
  const nonce = out.subarray(0, NONCE_BYTES);
  sodium.randombytes_buf(nonce);
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(out.subarray(NONCE_BYTES), plaintext, Buffer.from(ad), null, nonce, key);
}

export class AuthenticationError extends Error {}

/** The plaintext of a sealed object; AuthenticationError if it was altered, or sealed for other `ad`. */
export function open(key: Buffer, sealed: Buffer, ad: string): Buffer {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new AuthenticationError('object too short');
  const out = Buffer.alloc(sealed.length - NONCE_BYTES - TAG_BYTES);
  try {
    sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(out, null, sealed.subarray(NONCE_BYTES), Buffer.from(ad), sealed.subarray(0, NONCE_BYTES), key);
  } catch {
    throw new AuthenticationError('authentication failed');
  }
  return out;
}

/** BLAKE2b-256, keyed (blob ids) or not (object names). */
export function hash256(data: Buffer, key?: Buffer): Buffer {
  const out = Buffer.alloc(ID_BYTES);
  if (key) sodium.crypto_generichash(out, data, key);
  else sodium.crypto_generichash(out, data);
  return out;
}

const KDF_CONTEXT = Buffer.from('epochfs1');
export const SUBKEY_OBJECTS = 1;
export const SUBKEY_BLOB_IDS = 2;

export function subkey(master: Buffer, id: number): Buffer {
  const out = Buffer.alloc(KEY_BYTES);
  sodium.crypto_kdf_derive_from_key(out, id, KDF_CONTEXT, master);
  return out;
}
