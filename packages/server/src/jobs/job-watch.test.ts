// The fan-out of one job's events to many watchers (issue 24, the /healthz bar with 1,000 streams):
// written in slices of 100 a turn of the event loop, so other requests are served between them, while
// every watcher still sees strictly increasing changes and exactly one final event.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createStore } from '../store/index.js';
import { JobEventBus } from './events.js';
import { JobStore } from './job-store.js';
import { JobWatchHub } from './job-watch.js';

const turn = () => new Promise<void>((r) => setImmediate(r));

test('250 watchers of one job: changes and the final event go out 100 a turn, in order, once each', async () => {
  const store = createStore({ url: 'sqlite::memory:' });
  await store.migrate();
  const bus = new JobEventBus(undefined, pino({ level: 'silent' }));
  const jobs = new JobStore(store);
  const hub = new JobWatchHub(jobs, bus, {
    maxStreams: 1000,
    maxPerJob: 1000,
    maxPerClient: 1000,
    pollIntervalMs: 60_000,
    keepAliveMs: 60_000,
    minProgressIntervalMs: 0,
    maxFinalEventBytes: 1_000_000,
  });
  try {
    const id = '00000000-0000-4000-8000-0000000000aa';
    await jobs.insert({ id, model: 'm', version: '1', input: { instances: [1] }, maxAttempts: 1, now: Date.now() });
    const status = (await jobs.status(id))!;
    const seen: Array<Array<[string, number]>> = [];
    for (let i = 0; i < 250; i++) {
      const log: Array<[string, number]> = [];
      seen.push(log);
      // As the HTTP layer does: the final event ends the stream, which gives its slot back.
      let stop = () => undefined as void;
      stop = hub.reserve(id, `c${i}`).attach(
        {
          change: (kind, e) => log.push([kind, e.seq]),
          final: (kind, seq, json) => {
            log.push([`final:${kind}:${(JSON.parse(json) as { state: string }).state}`, seq]);
            stop();
          },
          keepAlive: () => undefined,
          gone: () => log.push(['gone', -1]),
        },
        status,
      );
    }
    const got = (seq: number) => seen.filter((l) => l.some(([, s]) => s === seq)).length;
    assert.equal(got(0), 250, 'each watcher got the current state as it attached');

    const active = await jobs.markActive(id, 'w', Date.now(), 60_000);
    bus.publish({ id, seq: Number(active!.seq), state: 'active', progress: 0 });
    assert.equal(got(1), 100, 'the first slice at once');
    // A change during the pass: the later slices send it instead, then the earlier ones catch up.
    const p = await jobs.setProgress(id, 'w', 0.5);
    bus.publish({ id, seq: Number(p!.seq), state: 'active', progress: 0.5 });
    for (let i = 0; i < 10; i++) await turn();
    assert.equal(got(2), 250, 'every watcher has the latest change');

    const done = await jobs.complete(id, { predictions: [1] }, Date.now());
    bus.publish({ id, seq: Number(done!.seq), state: 'completed', progress: 1 });
    for (let i = 0; i < 20 && seen.some((l) => !l.some(([k]) => k.startsWith('final'))); i++) await turn();
    for (const log of seen) {
      const seqs = log.map(([, s]) => s);
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
        'strictly in order',
      );
      assert.equal(new Set(seqs).size, seqs.length, 'no event twice');
      assert.equal(log.filter(([k]) => k.startsWith('final')).length, 1, 'one final event');
      assert.equal(log[0]![0], 'queued');
      assert.match(log[log.length - 1]![0], /^final:(completed|progress):completed$/);
    }
    assert.deepEqual(hub.counts(id), { streams: 0, job: 0, pollers: 0 }, 'every slot released');
  } finally {
    hub.close();
    bus.close();
    await store.close();
  }
});
