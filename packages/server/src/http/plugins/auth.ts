// Access control for the whole HTTP app: bearer keys checked against the scope table before the
// body is read, per-key (or per-address) rate limits shared through Redis when configured, and the
// CORS allow-list. Registered before any route so every route is covered.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import type { Redis } from 'ioredis';
import { FerryError } from '../../errors.js';
import type { ApiKeyConfig, AuthConfig } from '../../config/schemas/auth.js';
import type { KeyRing, Principal } from '../../auth/keys.js';
import { accessFor } from '../../auth/scope-table.js';
import { authorize } from '../../auth/authorize.js';
import { rateLimited } from '../../auth/rate-limit-store.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The API key that authenticated this request (absent when no key was sent or none are configured). */
    ferryPrincipal?: Principal;
  }
}

export interface AuthOptions {
  auth: AuthConfig;
  /** The live key set, built by the composition root (replaced on SIGHUP, config:reload, keysFile changes). */
  ring: KeyRing;
  /** The keys at start (config and keys file): whether per-key rate limits are configured. */
  startKeys: readonly ApiKeyConfig[];
  /** Shared counts for the rate limiter (app/ builds it with auth/rate-limit-store.ts); absent: in process. */
  rateLimitRedis?: Redis | undefined;
  /** Called with the error code of each refused request (for a metric). */
  onRefused?: (code: string) => void;
}

const authRefusals = new WeakMap<FastifyRequest, FerryError>();

/** Prefix of the WebSocket subprotocol that carries a key: browsers cannot set headers on a WebSocket. */
export const WS_BEARER_PREFIX = 'ferry.bearer.';

/**
 * The credentials of a request as an Authorization value: the header, or for a WebSocket upgrade
 * without one, a `Sec-WebSocket-Protocol` entry `ferry.bearer.<key>` (never a query parameter,
 * which would end up in access logs). The stream route must then select another offered
 * subprotocol (e.g. `ferry.v1`), as browsers require.
 */
export function credentialsOf(headers: FastifyRequest['headers']): string | string[] | undefined {
  if (headers.authorization !== undefined) return headers.authorization;
  const proto = headers['sec-websocket-protocol'];
  if (typeof proto !== 'string' || String(headers.upgrade).toLowerCase() !== 'websocket') return undefined;
  const entry = proto
    .split(',')
    .map((s) => s.trim())
    .find((s) => s.startsWith(WS_BEARER_PREFIX));
  return entry ? `Bearer ${entry.slice(WS_BEARER_PREFIX.length)}` : undefined;
}

/**
 * For routes whose model is in the body (the OpenAI API): refuses a key limited to other models.
 * @example assertModelAllowed(req, body.model)
 */
export function assertModelAllowed(req: FastifyRequest, model: string): void {
  const p = req.ferryPrincipal;
  const name = model.split('@', 1)[0]!;
  if (p && p.models.size > 0 && !p.models.has(name)) {
    throw new FerryError('forbidden', {
      detail: `key "${p.id}" is limited to the models ${[...p.models].join(', ')}`,
      extra: { required: `model:${name.slice(0, 64)}` },
    });
  }
}

/** The models the request's key is limited to; undefined when it may see every model. */
export function allowedModels(req: FastifyRequest): ReadonlySet<string> | undefined {
  const p = req.ferryPrincipal;
  return p && p.models.size > 0 ? p.models : undefined;
}

/** Whether a model may be shown to the request's key (listings filter with it). */
export function modelVisible(req: FastifyRequest, model: string): boolean {
  const p = req.ferryPrincipal;
  return !p || p.models.size === 0 || p.models.has(model);
}

const access: FastifyPluginAsync<AuthOptions> = async (app, opts) => {
  const { auth, ring } = opts;

  if (auth.cors.origins.length) {
    const any = auth.cors.origins.includes('*');
    await app.register(cors, {
      origin: any ? true : [...auth.cors.origins],
      credentials: auth.cors.credentials,
      maxAge: auth.cors.maxAgeSeconds,
      allowedHeaders: ['authorization', 'content-type', 'ferry-client-id', 'ferry-timeout-ms', 'x-request-id'],
      exposedHeaders: [
        'ferry-model-version',
        'ferry-cache',
        'ferry-fallback',
        'ferry-rollout',
        'deprecation',
        'sunset',
        'link',
        'retry-after',
        'x-request-id',
      ],
    });
  }

  // Two steps around the rate limiter: the key is identified first (so limits count per key), the
  // refusal is thrown after it (so guessing keys is counted, per address) and still before the body is read.
  // Callback hooks, not async ones: every request passes all three (a promise each is measurable).
  app.addHook('onRequest', (req, _reply, next) => {
    identify(req);
    next();
  });
  const identify = (req: FastifyRequest): void => {
    // A CORS preflight carries no credentials by design; @fastify/cors answers it.
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) return;
    const decision = accessFor(req.method, req.url);
    try {
      const principal = authorize(ring, decision, credentialsOf(req.headers), req.method, req.url.split('?', 1)[0]!);
      if (principal) {
        req.ferryPrincipal = principal;
        // setBindings on the request's own child logger: a second child per request costs more.
        // (Absent on Fastify's no-op logger, when logging is off.)
        const log = req.log as { setBindings?: (bindings: Record<string, unknown>) => void };
        if (typeof log.setBindings === 'function') log.setBindings({ apiKey: principal.id });
      }
    } catch (e) {
      if (!(e instanceof FerryError)) throw e;
      // A key that is valid but lacks the scope still counts against its own budget.
      if (e.code === 'forbidden' && ring.size > 0) {
        const text = credentialsOf(req.headers);
        const m = typeof text === 'string' ? /^Bearer (\S{1,512})$/i.exec(text.trim()) : null;
        const p = m ? ring.match(m[1]!) : undefined;
        if (p) req.ferryPrincipal = p;
      }
      authRefusals.set(req, e);
      opts.onRefused?.(e.code);
    }
  };
  app.addHook('preParsing', (req, _reply, payload, next) => {
    const refusal = authRefusals.get(req);
    if (refusal) next(refusal);
    else next(null, payload);
  });
  // 404 routes and the router's own errors skip preParsing: refuse there too.
  app.addHook('preHandler', (req, _reply, next) => {
    const refusal = authRefusals.get(req);
    next(refusal);
  });

  const { keyMax, ipMax, windowMs } = auth.rateLimit;
  // With a keys file, keys (and their per-key limits) can arrive after start: the limiter is registered
  // up front so their limits apply (unlimited callers are on its allow list, as always).
  if (rateLimited(auth, opts.startKeys)) {
    const redis = opts.rateLimitRedis;
    const limitOf = (req: FastifyRequest): number =>
      req.ferryPrincipal ? req.ferryPrincipal.rateLimitMax || keyMax : ipMax;
    await app.register(rateLimit, {
      global: true,
      hook: 'onRequest',
      timeWindow: windowMs,
      ...(redis && { redis, nameSpace: 'ferry:ratelimit:' }),
      // A Redis outage must not take inference down with it: requests pass uncounted.
      skipOnError: true,
      keyGenerator: (req) => (req.ferryPrincipal ? `key:${req.ferryPrincipal.id}` : `ip:${req.ip}`),
      // 0 means unlimited for that kind of caller; probes are never limited (a 429 would fail the pod).
      allowList: (req) => limitOf(req) === 0 || accessFor(req.method, req.url).rule.family === 'health',
      max: (req) => limitOf(req) || 1,
      errorResponseBuilder: (req, ctx) =>
        new FerryError('rate-limited', {
          detail: `${req.ferryPrincipal ? `key "${req.ferryPrincipal.id}"` : 'this client address'} is limited to ${ctx.max} requests per ${Math.round(windowMs / 1000)} s; retry in ${ctx.after}`,
          extra: { limit: ctx.max, windowMs },
          headers: { 'retry-after': String(Math.max(1, Math.ceil(ctx.ttl / 1000))) },
        }),
    });
  }
};

/**
 * The auth guard: not encapsulated (fastify-plugin), so its hooks, CORS and rate limits cover every
 * route of the app, including those registered after it.
 */
export const authPlugin = fp(access, { name: 'ferry-auth', fastify: '5.x' });
