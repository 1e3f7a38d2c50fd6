// API keys: parsed from FERRY_API_KEYS (hashed at once, the clear text is not kept), matched by
// comparing SHA-256 digests in constant time. SHA-256 rather than a password hash because keys are
// long random strings (no dictionary to guess from) and every request checks one.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { SCOPES, type ApiKeyConfig, type Scope } from '../config/schemas/auth.js';

export class ApiKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApiKeyError';
  }
}

export function hashKey(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** A new random key (32 bytes, base64url) with its digest for the config. */
export function newKey(): { secret: string; sha256: string } {
  const secret = `fk_${randomBytes(32).toString('base64url')}`;
  return { secret, sha256: hashKey(secret) };
}

const SECRET = /^[A-Za-z0-9._~+\/-]{16,256}$/;

/**
 * `FERRY_API_KEYS`: comma-separated entries `id=secret[;scopes=a+b][;models=x+y][;rate=N]`, e.g.
 * `web=…;scopes=predict+pipelines:read;models=spam, ops=…;scopes=admin`. Scopes default to predict.
 * Errors name the entry by its id, never the secret.
 */
export function parseApiKeysEnv(raw: string): ApiKeyConfig[] {
  const out: ApiKeyConfig[] = [];
  raw.split(',').map((s) => s.trim()).filter(Boolean).forEach((entry, i) => {
    const [head, ...opts] = entry.split(';').map((s) => s.trim());
    const eq = head!.indexOf('=');
    const id = eq > 0 ? head!.slice(0, eq) : '';
    const secret = eq > 0 ? head!.slice(eq + 1) : '';
    const where = `FERRY_API_KEYS entry ${i + 1}${/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(id) ? ` ("${id}")` : ''}`;
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(id)) throw new ApiKeyError(`${where}: expected id=secret with an id of letters, digits, '.', '_' or '-'`);
    if (!SECRET.test(secret)) throw new ApiKeyError(`${where}: the secret must be 16 to 256 characters of A-Z a-z 0-9 . _ ~ + / -`);
    const key: ApiKeyConfig = { id, sha256: hashKey(secret), scopes: ['predict'], models: [], rateLimitMax: 0 };
    for (const opt of opts) {
      const [k, v = ''] = opt.split('=', 2) as [string, string?];
      if (k === 'scopes') {
        const scopes = v.split('+').filter(Boolean);
        const bad = scopes.find((s) => !(SCOPES as readonly string[]).includes(s));
        if (bad !== undefined) throw new ApiKeyError(`${where}: unknown scope "${bad.slice(0, 40)}" (use ${SCOPES.join(', ')})`);
        key.scopes = scopes as Scope[];
      } else if (k === 'models') {
        const models = v.split('+').filter(Boolean);
        const bad = models.find((m) => !/^[a-z0-9][a-z0-9._-]{0,63}$/.test(m));
        if (bad !== undefined) throw new ApiKeyError(`${where}: invalid model name "${bad.slice(0, 64)}"`);
        key.models = models;
      } else if (k === 'rate') {
        if (!/^\d{1,9}$/.test(v)) throw new ApiKeyError(`${where}: rate must be a whole number of requests per window`);
        key.rateLimitMax = Number(v);
      } else throw new ApiKeyError(`${where}: unknown option "${k.slice(0, 40)}" (scopes, models, rate)`);
    }
    out.push(key);
  });
  return out;
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
      return { digest: Buffer.from(k.sha256, 'hex'), principal: { id: k.id, scopes: new Set(k.scopes), models: new Set(k.models), rateLimitMax: k.rateLimitMax } };
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
