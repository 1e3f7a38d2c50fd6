// A thread's nice value changes that thread alone: set in a worker thread, the worker's kernel
// thread has it and the main thread keeps its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getPriority } from 'node:os';
import { Worker } from 'node:worker_threads';
import { threadId } from './thread-priority.js';

const linux = process.platform === 'linux';

test('setThreadNice changes the calling thread only', { skip: !linux && 'Linux only' }, async () => {
  const mainTid = threadId();
  assert.equal(mainTid, process.pid, 'the main thread is the process leader');
  const before = getPriority(mainTid);
  // Raising one's own nice value needs no privilege.
  const target = Math.min(19, before + 3);
  const url = new URL('./thread-priority.js', import.meta.url).href;
  // The worker stays alive (its port listens) until it is terminated, so its thread id is still there
  // to be read.
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     parentPort.on('message', () => {});
     import(${JSON.stringify(url)}).then((m) => parentPort.postMessage(m.setThreadNice(${target})));`,
    { eval: true },
  );
  const result = await new Promise<{ ok: boolean; tid?: number; reason?: string }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  try {
    assert.equal(result.ok, true, result.reason);
    assert.notEqual(result.tid, mainTid);
    assert.equal(getPriority(result.tid), target);
    assert.equal(getPriority(mainTid), before, 'the main thread is unchanged');
  } finally {
    await worker.terminate();
  }
});
