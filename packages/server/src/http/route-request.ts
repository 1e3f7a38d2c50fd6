// The HTTP side of routing: the request's client identity goes in, the routed version comes out, and
// its rollout notice (canary arm, deprecation) becomes headers. The choice itself is made in serving's
// predict path by the rollout router; this file only translates.
import type { IncomingHttpHeaders } from 'node:http';
import type { Principal } from '../auth/keys.js';
import type { ModelVersion } from '../serving/repository/index.js';
import type { ClientIdentity, ModelRef, Routed } from '../serving/predict/routing.js';

/** Anything that routes a model reference (ModelService.route). */
export interface RequestRouter {
  route(ref: ModelRef, client: ClientIdentity): Routed;
}

/** What routing reads of a request (a FastifyRequest is one; so is the predict lane's request). */
export interface RoutedRequest {
  readonly headers: IncomingHttpHeaders;
  readonly ferryPrincipal?: Principal | undefined;
  /** The client address (after trusted proxies); read only when a canary split asks for it. */
  readonly ip: string;
}

/** Where routing's headers go (a FastifyReply is one). */
export interface HeaderSink {
  header(name: string, value: string): unknown;
}

/**
 * A request's client identity. The address (proxy-addr through trustProxy) is worked out only if a
 * canary split asks for it, by a getter on the class. Not an accessor defined on each object: that
 * gave every request a hidden class of its own, allocated in the old generation, whose getter kept
 * the whole request alive through young-generation collections until the next full one
 * (docs/benchmarks.md, "What kept requests alive").
 */
class RequestClient implements ClientIdentity {
  readonly clientIdHeader: string | undefined;
  readonly clientIdQuery: string | undefined;
  readonly principalId: string | undefined;
  readonly #req: RoutedRequest;
  constructor(req: RoutedRequest, clientIdQuery: string | undefined) {
    const header = req.headers['ferry-client-id'];
    this.clientIdHeader = Array.isArray(header) ? header[0] : header;
    this.clientIdQuery = clientIdQuery;
    this.principalId = req.ferryPrincipal?.id;
    this.#req = req;
  }
  get ip(): string {
    return this.#req.ip;
  }
}

/** The client identity of a request: Ferry-Client-Id, else `?clientId=` (streams), else the key, else the address. */
export function clientOf(req: RoutedRequest, clientIdQuery?: string): ClientIdentity {
  return new RequestClient(req, clientIdQuery);
}

/** Ferry-Rollout, then Deprecation, Sunset and Link, in the order clients have always seen them. */
export function applyRouted(reply: HeaderSink, r: Routed): void {
  if (r.arm) reply.header('ferry-rollout', r.arm);
  if (!r.deprecation) return;
  reply.header('deprecation', r.deprecation.deprecation);
  if (r.deprecation.sunset) reply.header('sunset', r.deprecation.sunset);
  reply.header('link', r.deprecation.link);
}

/** Routes a request's model and version (canary arm, deprecation headers, 410 after sunset). */
export function routeRequest(
  router: RequestRouter,
  req: RoutedRequest,
  reply: HeaderSink,
  model: string,
  version?: string,
  clientIdQuery?: string,
): ModelVersion {
  const r = router.route({ model, ...(version !== undefined && { version }) }, clientOf(req, clientIdQuery));
  applyRouted(reply, r);
  return r.version;
}
