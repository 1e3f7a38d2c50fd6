// The embedded queue's idle behaviour: one claim a poll interval for the whole process (not one per
// worker slot), a burst fills every slot from one wake-up, and stopping does not wait for a poll.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createStore } from '../store/index.js';
import { JobStore } from './job-store.js';
import type { JobRow } from './job-store.js';
import { SqlQueue } from './sql-queue.js';
import { sleep } from './queue-backend.js';

/** The real store, counting the claims the queue makes through it; `hold` delays a claim's answer. */
class CountingStore extends JobStore {
  claims = 0;
  hold: Promise<void> | undefined;
  held = false;
  override async claimNext(workerId: string, now: number, lockMs: number): Promise<JobRow | undefined> {
    this.claims++;
    const row = await super.claimNext(workerId, now, lockMs);
    if (this.hold) {
      this.held = true;
      await this.hold;
    }
    return row;
  }
}

async function setUp(pollIntervalMs: number) {
  const store = createStore({ url: 'sqlite::memory:' });
  await store.migrate();
  const jobs = new CountingStore(store);
  const queue = new SqlQueue(
    jobs,
    { lockDurationMs: 30_000, stalledIntervalMs: 60_000, pollIntervalMs },
    pino({ level: 'silent' }),
  );
  return { store, jobs, queue };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!ok()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

test('four idle slots claim once a poll interval between them, not once each', async () => {
  const { store, jobs, queue } = await setUp(20);
  const consumer = queue.consume('w1', 4, async () => ({ kind: 'done' }));
  try {
    await until('the four first claims', () => jobs.claims >= 4);
    const before = jobs.claims;
    await sleep(400);
    const polls = jobs.claims - before;
    // 400 ms at 20 ms is at most ~20 claims for one poller (timers run late, never early); a poller
    // per slot makes ~80.
    assert.ok(polls >= 2, `the idle poll stopped (${polls} claims)`);
    assert.ok(polls <= 24, `${polls} claims in 400 ms: more than one poller`);
  } finally {
    await consumer.stop(1000);
    await store.close();
  }
});

test('a burst inserted elsewhere fills every slot after one wake-up, and stop returns at once', async () => {
  const { store, jobs, queue } = await setUp(60_000);
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const running = new Set<string>();
  const consumer = queue.consume('w1', 4, async (row) => {
    running.add(row.id);
    await gate;
    return { kind: 'done' };
  });
  try {
    await until('the four first claims', () => jobs.claims >= 4);
    const now = Date.now();
    for (let i = 0; i < 5; i++) {
      const id = `00000000-0000-4000-8000-00000000000${i}`;
      await jobs.insert({ id, model: 'm', version: '1', input: { instances: [i] }, maxAttempts: 1, now });
    }
    // One wake-up (as a submit in this process makes); the poll interval is a minute, so only the
    // claims that found a job can have woken the other slots.
    await queue.enqueue();
    await until('four jobs running at once', () => running.size === 4);
    const lengths = await queue.lengths();
    assert.equal(lengths.waiting, 1, 'the fifth job waits for a free slot');
    open();
    await until('the fifth job', () => running.size === 5);
  } finally {
    open();
    const t0 = Date.now();
    await consumer.stop(30_000);
    assert.ok(Date.now() - t0 < 5_000, 'stop waited for a poll interval');
    await store.close();
  }
});

test('a job submitted while the only slot is mid-claim is claimed at once, not at the next poll', async () => {
  const { store, jobs, queue } = await setUp(60_000);
  const ran: string[] = [];
  const consumer = queue.consume('w1', 1, async (row) => {
    ran.push(row.id);
    return { kind: 'done' };
  });
  try {
    await until('the first claim', () => jobs.claims >= 1);
    await sleep(20);
    // The next claim's query runs on an empty table; its answer is held while a job is submitted.
    let release!: () => void;
    jobs.hold = new Promise<void>((r) => (release = r));
    jobs.held = false;
    await queue.enqueue(); // wakes the idle slot, whose claim is then held
    await until('a claim held after its query', () => jobs.held);
    jobs.hold = undefined;
    const id = '00000000-0000-4000-8000-0000000000ff';
    await jobs.insert({ id, model: 'm', version: '1', input: { instances: [1] }, maxAttempts: 1, now: Date.now() });
    await queue.enqueue(); // no slot is idle: the wake-up is kept
    release();
    // The poll interval is a minute: only the kept wake-up can make the slot claim again.
    await until('the submitted job to run', () => ran.includes(id));
  } finally {
    await consumer.stop(1000);
    await store.close();
  }
});
