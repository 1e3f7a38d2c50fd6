// The `auth` section of ferry.config.yaml: API keys (stored as SHA-256 digests, never in clear),
// rate limits and the CORS allow-list. Lives here so the config schema only imports it.
import { Type, type Static } from '@sinclair/typebox';

export const SCOPES = ['predict', 'jobs', 'pipelines:read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export const ApiKeySchema = Type.Object(
  {
    /** A name for logs and metrics; never the secret. */
    id: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' }),
    /** Hex SHA-256 of the key (`ferry keys hash`, or `ferry keys new` to make one). */
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    scopes: Type.Array(Type.Union(SCOPES.map((s) => Type.Literal(s))), { default: ['predict'], uniqueItems: true }),
    /** When non-empty, the key only reaches these models. */
    models: Type.Array(Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' }), { default: [] }),
    /** Requests per rate-limit window for this key; 0 = `auth.rateLimit.keyMax`. */
    rateLimitMax: Type.Integer({ minimum: 0, default: 0 }),
  },
  { additionalProperties: false },
);
export type ApiKeyConfig = Static<typeof ApiKeySchema>;

export const AuthConfigSchema = Type.Object(
  {
    /** API keys; FERRY_API_KEYS adds more (hashed as they are read). None = inference open, admin off. */
    keys: Type.Array(ApiKeySchema, { default: [] }),
    /**
     * A YAML or JSON file of more key entries (`keys: [{id, sha256, scopes, models}]`), e.g. a mounted
     * Kubernetes Secret. Re-read on SIGHUP, POST /v1/admin/config:reload and, under --watch, when it changes.
     */
    keysFile: Type.String({ default: '' }),
    rateLimit: Type.Object(
      {
        /** Requests per window for an authenticated key; 0 = unlimited. */
        keyMax: Type.Integer({ minimum: 0, default: 0 }),
        /** Requests per window per client address for requests without a key; 0 = unlimited. */
        ipMax: Type.Integer({ minimum: 0, default: 0 }),
        windowMs: Type.Integer({ minimum: 100, default: 60_000 }),
        /** Counters live in Redis (shared by replicas) when redis.url is set; this forces in-process. */
        local: Type.Boolean({ default: false }),
      },
      { additionalProperties: false, default: {} },
    ),
    /**
     * Proxies in front of Ferry whose X-Forwarded-For to trust (1 = the load balancer or ingress in
     * front). 0: the client address is the TCP peer. Per-address rate limits and logs use it.
     */
    trustProxyHops: Type.Integer({ minimum: 0, maximum: 16, default: 0 }),
    cors: Type.Object(
      {
        /** Allowed browser origins (exact, e.g. https://app.example.com); empty = no CORS headers; "*" = any. */
        origins: Type.Array(Type.String(), { default: [] }),
        credentials: Type.Boolean({ default: false }),
        maxAgeSeconds: Type.Integer({ minimum: 0, default: 600 }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);
export type AuthConfig = Static<typeof AuthConfigSchema>;
