// Scheduling priority of the calling thread. Linux schedules threads, not processes, and
// setpriority(2) given a thread id changes that thread alone; Node exposes setpriority as
// os.setPriority and the calling thread's id as the /proc/thread-self link (a synchronous readlink
// runs on the calling thread). The health lane raises its thread so that a probe is answered as
// soon as it arrives even while the serving thread and the inference workers keep every core busy.
// Hand-written: no maintained package does this for a worker thread (they set a whole process).
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/** This thread's kernel id, or undefined off Linux. */
export function threadId(): number | undefined {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Sets the calling thread's nice value (-20 most favoured … 19 least). Returns why not when it
 * cannot: not Linux, or (for a value below the current one) no CAP_SYS_NICE.
 */
export function setThreadNice(nice: number): { ok: true; tid: number } | { ok: false; reason: string } {
  const tid = threadId();
  if (tid === undefined) return { ok: false, reason: 'no /proc/thread-self (not Linux)' };
  try {
    setPriority(tid, nice);
    return { ok: true, tid };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}
