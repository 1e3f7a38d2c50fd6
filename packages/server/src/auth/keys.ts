// API keys: parsed from FERRY_API_KEYS (hashed at once, the clear text is not kept), matched by
// comparing SHA-256 digests in constant time. SHA-256 rather than a password hash because keys are
// long random strings (no dictionary to guess from) and every request checks one.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { hashKey, ApiKeyError } from '../config/api-keys.js';
import type { ApiKeyConfig, Scope } from '../config/schemas/auth.js';

export { ApiKeyError, hashKey, parseApiKeysEnv } from '../config/api-keys.js';

/** A new random key (32 bytes, base64url) with its digest for the config. */
export function newKey(): { secret: string; sha256: string } {
  const secret = `fk_${randomBytes(32).toString('base64url')}`;
  return { secret, sha256: hashKey(secret) };
}

export interface Principal {
  readonly id: string;
  readonly scopes: ReadonlySet<Scope>;
  readonly models: ReadonlySet<string>;
  readonly rateLimitMax: number;
}

/** The configured keys, matched by digest. Every lookup compares against every key (no early exit). */
export class KeyRing {
  private entries: ReadonlyArray<{ digest: Buffer; principal: Principal }>;

  constructor(keys: readonly ApiKeyConfig[]) {
    this.entries = KeyRing.build(keys);
  }

  private static build(keys: readonly ApiKeyConfig[]): Array<{ digest: Buffer; principal: Principal }> {
    const ids = new Set<string>();
    return keys.map((k) => {
      if (ids.has(k.id)) throw new ApiKeyError(`API key id "${k.id}" is configured twice`);
      ids.add(k.id);
      return {
        digest: Buffer.from(k.sha256, 'hex'),
        principal: { id: k.id, scopes: new Set(k.scopes), models: new Set(k.models), rateLimitMax: k.rateLimitMax },
      };
    });
  }

  /**
   * Swaps the whole key set in one step (rotation without restart). Checked first: a bad set throws
   * and the old keys stay. Requests already authenticated keep their principal; the next request
   * of a removed key is refused.
   */
  replace(keys: readonly ApiKeyConfig[]): void {
    this.entries = KeyRing.build(keys);
  }

  /** Key ids (never digests), for logs and reports. */
  ids(): string[] {
    return this.entries.map((e) => e.principal.id);
  }

  get size(): number {
    return this.entries.length;
  }

  match(secret: string): Principal | undefined {
    const digest = createHash('sha256').update(secret, 'utf8').digest();
    let found: Principal | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.digest, digest) && !found) found = e.principal;
    return found;
  }
}
