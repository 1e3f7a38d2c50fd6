// FERRY_API_KEYS as read by the config loader: entries parsed and hashed at once (the clear text is
// not kept). auth/ matches requests against the digests; it re-exports these.
import { createHash } from 'node:crypto';
import { SCOPES, type ApiKeyConfig, type Scope } from './schemas/auth.js';

export class ApiKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApiKeyError';
  }
}

export function hashKey(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

const SECRET = /^[A-Za-z0-9._~+/-]{16,256}$/;

/**
 * `FERRY_API_KEYS`: comma-separated entries `id=secret[;scopes=a+b][;models=x+y][;rate=N]`, e.g.
 * `web=…;scopes=predict+pipelines:read;models=spam, ops=…;scopes=admin`. Scopes default to predict.
 * Errors name the entry by its id, never the secret.
 */
export function parseApiKeysEnv(raw: string): ApiKeyConfig[] {
  const out: ApiKeyConfig[] = [];
  raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .forEach((entry, i) => {
      const [head, ...opts] = entry.split(';').map((s) => s.trim());
      const eq = head!.indexOf('=');
      const id = eq > 0 ? head!.slice(0, eq) : '';
      const secret = eq > 0 ? head!.slice(eq + 1) : '';
      const where = `FERRY_API_KEYS entry ${i + 1}${/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(id) ? ` ("${id}")` : ''}`;
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(id))
        throw new ApiKeyError(`${where}: expected id=secret with an id of letters, digits, '.', '_' or '-'`);
      if (!SECRET.test(secret))
        throw new ApiKeyError(`${where}: the secret must be 16 to 256 characters of A-Z a-z 0-9 . _ ~ + / -`);
      const key: ApiKeyConfig = { id, sha256: hashKey(secret), scopes: ['predict'], models: [], rateLimitMax: 0 };
      for (const opt of opts) {
        const [k, v = ''] = opt.split('=', 2) as [string, string?];
        if (k === 'scopes') {
          const scopes = v.split('+').filter(Boolean);
          const bad = scopes.find((s) => !(SCOPES as readonly string[]).includes(s));
          if (bad !== undefined)
            throw new ApiKeyError(`${where}: unknown scope "${bad.slice(0, 40)}" (use ${SCOPES.join(', ')})`);
          key.scopes = scopes as Scope[];
        } else if (k === 'models') {
          const models = v.split('+').filter(Boolean);
          const bad = models.find((m) => !/^[a-z0-9][a-z0-9._-]{0,63}$/.test(m));
          if (bad !== undefined) throw new ApiKeyError(`${where}: invalid model name "${bad.slice(0, 64)}"`);
          key.models = models;
        } else if (k === 'rate') {
          if (!/^\d{1,9}$/.test(v))
            throw new ApiKeyError(`${where}: rate must be a whole number of requests per window`);
          key.rateLimitMax = Number(v);
        } else throw new ApiKeyError(`${where}: unknown option "${k.slice(0, 40)}" (scopes, models, rate)`);
      }
      out.push(key);
    });
  return out;
}
