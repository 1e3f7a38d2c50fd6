// The access check, transport-free: a decision from the scope table plus the caller's Authorization
// value give the principal or the refusal. HTTP (http/plugins/auth.ts) and gRPC (grpc/) both call it,
// so a key has the same rights whichever transport it comes through.
import { FerryError } from '../errors.js';
import type { KeyRing, Principal } from './keys.js';
import type { AccessDecision } from './scope-table.js';

/** Throws the refusal for a request, or returns the principal (undefined when open). */
export function authorize(
  ring: KeyRing,
  decision: AccessDecision,
  header: string | string[] | undefined,
  method: string,
  path: string,
): Principal | undefined {
  const { rule, model } = decision;
  const keysOn = ring.size > 0;
  if (!keysOn) {
    // Without keys nothing dangerous exists: management routes are not there at all.
    if (rule.access === 'admin')
      throw new FerryError('route-not-found', {
        detail: `no route ${method} ${path.slice(0, 200)}; management endpoints need API keys (see docs/security.md)`,
      });
    return undefined;
  }
  if (rule.access === 'public') return undefined;
  const text = Array.isArray(header) ? header[0] : header;
  const bearer = text !== undefined ? /^Bearer ([^\s]{1,512})$/i.exec(text.trim()) : null;
  const challenge = { 'www-authenticate': 'Bearer realm="ferry"' };
  if (!bearer) {
    throw new FerryError('unauthorized', {
      detail:
        text === undefined
          ? 'send an API key as "Authorization: Bearer <key>"'
          : 'the Authorization header must be "Bearer <key>"',
      headers: challenge,
    });
  }
  const principal = ring.match(bearer[1]!);
  if (!principal)
    throw new FerryError('unauthorized', {
      detail: 'the API key is not valid',
      headers: { 'www-authenticate': 'Bearer realm="ferry", error="invalid_token"' },
    });
  if (rule.access !== 'key' && !principal.scopes.has(rule.access)) {
    throw new FerryError('forbidden', {
      detail: `key "${principal.id}" lacks the "${rule.access}" scope this route needs`,
      extra: { required: rule.access },
    });
  }
  if (model !== undefined && principal.models.size > 0 && !principal.models.has(model)) {
    throw new FerryError('forbidden', {
      detail: `key "${principal.id}" is limited to the models ${[...principal.models].join(', ')}`,
      extra: { required: `model:${model.slice(0, 64)}` },
    });
  }
  return principal;
}
