import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientIdentity, ModelRef, Routed } from '../serving/predict/routing.js';
import type { ModelVersion } from '../serving/repository/index.js';
import { clientOf, routeRequest, type RoutedRequest } from './route-request.js';

/** A request whose address counts how often it is read. */
function request(headers: RoutedRequest['headers'], principalId?: string): RoutedRequest & { ipReads: number } {
  return {
    headers,
    ...(principalId !== undefined && {
      ferryPrincipal: { id: principalId, scopes: new Set(), models: new Set(), rateLimitMax: 0 },
    }),
    ipReads: 0,
    get ip() {
      this.ipReads++;
      return '203.0.113.7';
    },
  };
}

test('clientOf takes the client id header, the query, the key, and reads the address only when asked', () => {
  const req = request({ 'ferry-client-id': 'user-1' }, 'key-a');
  const c = clientOf(req, 'q-1');
  assert.equal(c.clientIdHeader, 'user-1');
  assert.equal(c.clientIdQuery, 'q-1');
  assert.equal(c.principalId, 'key-a');
  assert.equal(req.ipReads, 0);
  assert.equal(c.ip, '203.0.113.7');
  assert.equal(req.ipReads, 1);

  // A repeated header: the first value; nothing set: nothing claimed.
  const bare = clientOf(request({ 'ferry-client-id': ['a', 'b'] as unknown as string }));
  assert.equal(bare.clientIdHeader, 'a');
  assert.equal(bare.clientIdQuery, undefined);
  assert.equal(bare.principalId, undefined);
});

test('routeRequest routes with the client identity and writes the rollout headers in order', () => {
  const version = { name: 'm', version: '2.0.0', key: 'm@2.0.0' } as ModelVersion;
  const seen: Array<{ ref: ModelRef; client: ClientIdentity }> = [];
  const router = {
    route(ref: ModelRef, client: ClientIdentity): Routed {
      seen.push({ ref, client });
      return {
        version,
        arm: 'canary',
        deprecation: { deprecation: '@1767225600', sunset: 'Thu, 01 Jan 2027 00:00:00 GMT', link: '<https://x>' },
      };
    },
  };
  const headers: Array<[string, string]> = [];
  const got = routeRequest(router, request({}, 'k'), { header: (n, v) => headers.push([n, v]) }, 'm', '2');
  assert.equal(got, version);
  assert.deepEqual(seen[0]!.ref, { model: 'm', version: '2' });
  assert.equal(seen[0]!.client.principalId, 'k');
  assert.equal(seen[0]!.client.ip, '203.0.113.7');
  assert.deepEqual(
    headers.map(([n]) => n),
    ['ferry-rollout', 'deprecation', 'sunset', 'link'],
  );
});
