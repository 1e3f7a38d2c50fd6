// jobs.proxyRequestIdempotency: behind a proxy that sets X-Request-Id (deploy/nginx), a submission
// without an Idempotency-Key is keyed by that id, so the proxy's retry of the POST on another replica
// finds the first job. Off, the header keys nothing (it is the client's to choose).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, tinyClassifier } from '@ferry/test-kit';

const cls = tinyClassifier();
const submit = (
  s: Awaited<ReturnType<typeof startTestServer>>,
  headers: Record<string, string>,
  instance = cls.example,
) => s.server.app.inject({ method: 'POST', url: '/v1/models/cls/jobs', headers, payload: { instances: [instance] } });

test('on: the proxy request id keys a submission without an Idempotency-Key; a client key still wins', async () => {
  const s = await startTestServer([{ name: 'cls', version: '1.0.0', files: cls }], {
    'jobs.proxyRequestIdempotency': true,
  });
  try {
    const first = await submit(s, { 'x-request-id': 'nginx-0123abcd' });
    const retry = await submit(s, { 'x-request-id': 'nginx-0123abcd' });
    assert.equal(first.statusCode, 202, first.body);
    assert.equal(retry.statusCode, 202, retry.body);
    assert.equal(retry.json().id, first.json().id, 'the retry found the first job');
    assert.equal(retry.headers['idempotent-replayed'], 'true');
    const other = await submit(s, { 'x-request-id': 'nginx-4567efab' });
    assert.notEqual(other.json().id, first.json().id, 'another request id is another job');
    // The same id with another body is refused as for a reused key, never answered with the first job.
    const reused = await submit(
      s,
      { 'x-request-id': 'nginx-0123abcd' },
      { ...cls.example, amount: cls.example.amount + 1 },
    );
    assert.equal(reused.statusCode, 422, reused.body);
    assert.equal(reused.json().code, 'idempotency-key-reused');
    // A client's own key is used as is, whatever the request id says.
    const keyed = await submit(s, { 'x-request-id': 'nginx-0123abcd', 'idempotency-key': 'client-key-1' });
    assert.notEqual(keyed.json().id, first.json().id);
    const listed = await s.server.app.inject({ method: 'GET', url: '/v1/jobs?model=cls&limit=100' });
    assert.equal(listed.json().jobs.length, 3, 'three jobs: first, other, keyed');
  } finally {
    await s.close();
  }
});

test('off (the default): the same X-Request-Id twice is two jobs', async () => {
  const s = await startTestServer([{ name: 'cls', version: '1.0.0', files: cls }]);
  try {
    const a = await submit(s, { 'x-request-id': 'same-id-0001' });
    const b = await submit(s, { 'x-request-id': 'same-id-0001' });
    assert.equal(a.statusCode, 202);
    assert.equal(b.statusCode, 202);
    assert.notEqual(a.json().id, b.json().id);
  } finally {
    await s.close();
  }
});
