// Reliability (issue 24, item 7): a drain with an audio WebSocket open and keep-alive predict loops
// running. The listener must stop accepting at once (it stayed open for the stream grace, because
// the WebSocket plugin's pre-close wait came before the listener's close); requests on kept-alive
// connections finish, with `Connection: close`; the WebSocket gets its 1001 close frame; no request
// is reset. Scaled down from the report (16 loops) to 6.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { startTestServer, tinyClassifier } from '@ferry/test-kit';
import { shutdown } from '../lifecycle/index.js';

const MODELS = fileURLToPath(new URL('../../../../models', import.meta.url));
const cls = tinyClassifier();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function post(agent: Agent, port: number): Promise<{ status: number; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ instances: [cls.example] });
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/v1/models/cls/predict',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Whether a new TCP connection is accepted. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

test(
  'drain with an open WebSocket: stop accepting at once, close frames, nothing reset',
  { timeout: 60_000 },
  async () => {
    const ts = await startTestServer(
      [{ name: 'cls', version: '1.0.0', files: { onnx: cls.onnx, manifest: cls.manifest } }],
      {
        'lifecycle.streamGraceMs': 1500,
        'server.shutdownGraceMs': 10_000,
        'streaming.idleTimeoutMs': 60_000,
      },
    );
    cpSync(join(MODELS, 'silero-vad'), join(ts.repoDir, 'silero-vad'), { recursive: true });
    await ts.server.reloadConfig();
    const { port } = await ts.server.listen();

    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/models/silero-vad/stream?format=pcm16`, ['ferry.v1']);
    ws.on('error', () => undefined);
    const wsClosed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_q, r) => reject(new Error(`upgrade refused: ${r.statusCode}`)));
    });
    ws.send(Buffer.alloc(16_000 * 2));

    // Keep-alive loops: each runs until its server says `Connection: close` and a new connection is refused.
    const errors: string[] = [];
    let served = 0;
    let closeAnswers = 0;
    let stop = false;
    const loops = Array.from({ length: 6 }, async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        while (!stop) {
          try {
            const r = await post(agent, port);
            assert.equal(r.status, 200);
            served++;
            if (r.connection === 'close') closeAnswers++;
          } catch (e) {
            const code = (e as NodeJS.ErrnoException).code;
            // Refused: the listener is closed, the client goes elsewhere. Anything else is a reset request.
            if (code === 'ECONNREFUSED') return;
            errors.push(`${code ?? ''} ${(e as Error).message}`);
            return;
          }
        }
      } finally {
        agent.destroy();
      }
    });
    await sleep(300);
    assert.ok(served > 0);

    const done = shutdown(ts.server, 'SIGTERM');
    await sleep(100);
    // Stream grace is 1.5 s: before the fix the listener was still accepting here.
    assert.equal(await accepts(port), false, 'a new connection was accepted 100 ms after the drain began');
    assert.equal(await wsClosed, 1001);
    await done;
    stop = true;
    await Promise.all(loops);
    assert.deepEqual(errors, [], 'requests were reset');
    assert.ok(closeAnswers > 0, 'kept-alive connections were told to close');
    await ts.close();
  },
);
