// Reliability (issue 24, item 4): slow clients cannot exhaust the server before any auth check.
// Partial headers trickled a byte at a time are cut at server.headersTimeoutMs, a slow body at
// server.requestTimeoutMs, and connections past server.maxConnections get a clear 503 at once; the
// server keeps answering /healthz throughout. (Scaled down from the report's 20,000 connections: a
// cap of 30 shows the same refusal.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startTestServer, tinyClassifier, type TestServer } from '@ferry/test-kit';

const cls = tinyClassifier();

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

/** Everything the server sends until it closes the socket. */
function untilClosed(s: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => {
      text += c;
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(text));
  });
}

async function healthz(port: number): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  await r.arrayBuffer();
  return r.status;
}

describe('slow clients', () => {
  let ts: TestServer;
  let port: number;
  before(async () => {
    ts = await startTestServer([{ name: 'cls', version: '1.0.0', files: { onnx: cls.onnx, manifest: cls.manifest } }], {
      'server.headersTimeoutMs': 400,
      'server.requestTimeoutMs': 800,
      'server.timeoutCheckIntervalMs': 50,
      'server.maxConnections': 30,
    });
    port = (await ts.server.listen()).port;
  });
  after(() => ts.close());

  test('partial headers trickled a byte at a time are cut at the headers timeout', { timeout: 30_000 }, async () => {
    const sockets = await Promise.all(Array.from({ length: 10 }, () => open(port)));
    const closed = sockets.map(untilClosed);
    for (const s of sockets) s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    const drip = setInterval(() => {
      for (const s of sockets) if (!s.destroyed) s.write('a');
    }, 100);
    try {
      const answers = await Promise.all(closed);
      for (const a of answers) assert.match(a, /^HTTP\/1\.1 408|^$/);
    } finally {
      clearInterval(drip);
    }
    assert.equal(await healthz(port), 200);
  });

  test('a body trickled a byte at a time is cut at the request timeout', { timeout: 30_000 }, async () => {
    const s = await open(port);
    const closed = untilClosed(s);
    s.write(
      'POST /v1/models/cls/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{',
    );
    const drip = setInterval(() => {
      if (!s.destroyed) s.write(' ');
    }, 100);
    try {
      assert.match(await closed, /^HTTP\/1\.1 408|^$/);
    } finally {
      clearInterval(drip);
    }
  });

  test('connections past server.maxConnections get a 503 problem at once, and /healthz recovers', async () => {
    const held = await Promise.all(Array.from({ length: 30 }, () => open(port)));
    for (const s of held) s.on('error', () => undefined);
    const extra = await open(port);
    const answer = await untilClosed(extra);
    assert.match(answer, /^HTTP\/1\.1 503/);
    assert.match(answer, /retry-after: 1/i);
    assert.match(answer, /"code":"server-overloaded"/);
    assert.match(answer, /server\.maxConnections/);
    for (const s of held) s.destroy();
    // Once they are gone, new clients are served.
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = await healthz(port).catch(() => 0);
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 200);
  });
});
