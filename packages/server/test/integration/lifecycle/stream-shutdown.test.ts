// SIGTERM with streams open, on a real `ferry serve` child: an audio WebSocket session (silero-vad)
// and an SSE predict stream of many slow rows. Both get lifecycle.streamGraceMs, then end with the
// reason: the WebSocket with close code 1001 and the lifecycle's reason text, the SSE stream with a
// final `shutdown` event. The server exits 0 (a deadline kill would be a SIGKILL).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { startChildServer, type ChildServer, slowModel, tempModelRepository, writeModelVersion } from '@ferry/test-kit';

const MODELS = fileURLToPath(new URL('../../../../../models', import.meta.url));
const STREAM_GRACE_MS = 1500;
const DEADLINE_MS = 10_000;

interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

test(
  'SIGTERM: an open audio WebSocket is closed 1001 with the reason and an SSE predict stream ends with a shutdown event, after the stream grace; the server exits 0',
  { timeout: 120_000 },
  async () => {
    const repo = await tempModelRepository();
    cpSync(join(MODELS, 'silero-vad'), join(repo.dir, 'silero-vad'), { recursive: true });
    const slow = slowModel(150);
    await writeModelVersion(repo.dir, 'slow', '1.0.0', {
      onnx: slow.onnx,
      manifest: { ...slow.manifest, batching: { enabled: false }, timeoutMs: 30_000 },
    });
    let server: ChildServer | undefined;
    try {
      server = await startChildServer({
        args: ['--models', repo.dir, '--workers', '1'],
        env: {
          REDIS_URL: '',
          FERRY_REDIS_URL: '',
          DATABASE_URL: '',
          FERRY_STORE_URL: 'sqlite::memory:',
          FERRY_RUNTIME_WARMUP_RUNS: '1',
          FERRY_LIFECYCLE_STREAM_GRACE_MS: String(STREAM_GRACE_MS),
          FERRY_SERVER_SHUTDOWN_GRACE_MS: String(DEADLINE_MS),
          FERRY_STREAMING_IDLE_TIMEOUT_MS: '60000',
        },
      });
      const s = server;

      // The WebSocket session: open, send one second of silence, keep it open.
      const ws = new WebSocket(`ws://127.0.0.1:${s.port}/v1/models/silero-vad/stream?format=pcm16`, ['ferry.v1']);
      const wsClosed = new Promise<{ code: number; reason: string; at: number }>((resolve) => {
        ws.on('close', (code, reason) => resolve({ code, reason: reason.toString(), at: Date.now() }));
      });
      ws.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('unexpected-response', (_q, r) => reject(new Error(`upgrade refused: ${r.statusCode}`)));
      });
      ws.send(Buffer.alloc(16_000 * 2));

      // The SSE stream: 80 rows of ~150 ms each, far longer than the grace.
      const rows = 80;
      const res = await fetch(`${s.url}/v1/models/slow/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ instances: Array.from({ length: rows }, (_, i) => ({ x: [i, 0, 0, 0] })) }),
      });
      assert.equal(res.status, 200);
      const events: SseEvent[] = [];
      let firstRow!: () => void;
      const gotRow = new Promise<void>((r) => {
        firstRow = r;
      });
      const sseDone = (async () => {
        const decoder = new TextDecoder();
        let buf = '';
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          let k;
          while ((k = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, k);
            buf = buf.slice(k + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
            const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') as Record<string, unknown>;
            events.push({ event, data });
            if (event === 'row') firstRow();
          }
        }
        return Date.now();
      })();
      await gotRow;

      const sigAt = Date.now();
      s.proc.kill('SIGTERM');
      const [closed, sseEndAt, exit] = await Promise.all([wsClosed, sseDone, s.exited]);

      assert.equal(closed.code, 1001, 'WebSocket close code: going away');
      assert.match(
        closed.reason,
        /^server shutting down \(SIGTERM\)$/,
        "the close reason is the lifecycle's, naming the signal",
      );
      const last = events.at(-1)!;
      assert.equal(last.event, 'shutdown', `the SSE stream ended with a shutdown event, not ${last.event}`);
      assert.match(String(last.data.reason), /server shutting down \(SIGTERM\)/);
      const got = events.filter((e) => e.event === 'row');
      assert.ok(got.length >= 1 && got.length < rows, `some rows, not all (${got.length} of ${rows})`);
      assert.equal(last.data.rows, rows);
      assert.equal(last.data.started, got.length, 'every row started before the stop was delivered');
      for (const e of got) {
        const i = e.data.index as number;
        assert.ok(
          Math.abs((e.data.prediction as { value: number }).value - slow.reference({ x: [i, 0, 0, 0] })[0]!) < 1e-4,
          `row ${i}`,
        );
      }
      assert.deepEqual(
        { code: exit.code, signal: exit.signal },
        { code: 0, signal: null },
        `the server exits 0 before its deadline\n${s.stderr()}`,
      );
      assert.ok(s.logs.some((l) => l.msg === 'shut down cleanly'));
      console.log(
        `# stream shutdown: WebSocket closed ${closed.code} "${closed.reason}" ${closed.at - sigAt} ms after SIGTERM (stream grace ${STREAM_GRACE_MS} ms); SSE ended with "shutdown" after ${got.length}/${rows} rows, ${sseEndAt - sigAt} ms after SIGTERM; server exited ${exit.at - sigAt} ms after SIGTERM (deadline ${DEADLINE_MS} ms), code 0`,
      );
    } finally {
      if (server && server.proc.exitCode === null && server.proc.signalCode === null) await server.stop('SIGKILL');
      await repo.remove();
    }
  },
);
