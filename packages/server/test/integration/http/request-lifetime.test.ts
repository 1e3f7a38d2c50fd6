// What the HTTP layer builds for each request must die with the request, in a young-generation
// collection. One old object pointing at a request keeps all of it alive through every scavenge until
// the next full collection: an accessor defined on each client identity, and an object literal with
// `get ip()` over the request in the predict lane, did that, and under load each scavenge promoted
// ~3 MB and paused 10-20 ms (docs/benchmarks.md, "What kept requests alive"). Each probe is a child
// Node counting V8's promoted bytes (test-kit youngPromotion), so these are integration tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { youngPromotion } from '@ferry/test-kit';

const routeRequest = new URL('../../http/route-request.js', import.meta.url).href;
const predictLane = new URL('../../http/predict-lane.js', import.meta.url).href;

test('the probe tells a shape that keeps its request from one that does not', () => {
  const nothing = youngPromotion(routeRequest, '0');
  const leaking = youngPromotion(routeRequest, '({ headers: r.headers, get ip() { return r.payload[0]; } })');
  // 20,000 requests of ~4 KB each: ~80 MB when every one is kept.
  assert.ok(
    leaking.promotedBytes > nothing.promotedBytes + 40e6,
    `the leaking shape promoted ${leaking.promotedBytes} bytes, nothing at all ${nothing.promotedBytes}`,
  );
});

test('a client identity (clientOf) leaves nothing for the old generation', () => {
  const nothing = youngPromotion(routeRequest, '0');
  const identities = youngPromotion(routeRequest, 'm.clientOf(r, "q")');
  assert.ok(
    identities.promotedBytes < nothing.promotedBytes + 8e6,
    `20,000 identities promoted ${identities.promotedBytes} bytes, nothing at all ${nothing.promotedBytes}`,
  );
});

test("the predict lane's view of a request (LaneRequest) leaves nothing for the old generation", () => {
  const nothing = youngPromotion(predictLane, '0');
  const views = youngPromotion(predictLane, 'new m.LaneRequest(r, undefined, (_a, hop) => hop < 1).ip');
  assert.ok(
    views.promotedBytes < nothing.promotedBytes + 8e6,
    `20,000 lane requests promoted ${views.promotedBytes} bytes, nothing at all ${nothing.promotedBytes}`,
  );
});
