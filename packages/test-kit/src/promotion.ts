// What a piece of per-request code leaves for V8's old generation. Objects a request makes should die
// young, in a scavenge; one old object that points at a request (a hidden class built for it, say)
// keeps the whole request alive through every scavenge until the next full collection, and the
// server then spends its time copying and promoting requests (docs/benchmarks.md, "What kept
// requests alive"). Measured in a child Node with --trace-gc-nvp, V8's own count of promoted bytes.
import { spawnSync } from 'node:child_process';

export interface Promotion {
  /** Scavenges during the run (young-generation collections). */
  scavenges: number;
  /** Bytes they promoted to the old generation, summed. */
  promotedBytes: number;
}

/**
 * Runs `expression` `calls` times in a fresh Node process, each time over a new request-like object
 * `r` (`r.headers`, `r.socket`, and a `r.payload` of about 4 KB that only the request holds), with
 * `m` the module at `moduleUrl`; drops every result, then runs two scavenges. The count includes
 * what importing the module promoted (~18 MB for the server's HTTP modules, within ±2 MB from run
 * to run): compare with the expression `0`. A call that keeps its request promotes about `calls` × 4 KB more.
 */
export function youngPromotion(moduleUrl: string, expression: string, calls = 20_000): Promotion {
  const script = `
const m = await import(${JSON.stringify(moduleUrl)});
let kept = 0;
for (let i = 0; i < ${calls}; i++) {
  const r = {
    headers: { 'ferry-client-id': 'client-' + i },
    socket: { remoteAddress: '127.0.0.1' },
    payload: Array.from({ length: 1000 }, (_, j) => j + i),
  };
  if ((${expression}) !== undefined) kept++;
}
gc({ type: 'minor', execution: 'sync' });
gc({ type: 'minor', execution: 'sync' });
if (kept !== ${calls}) throw new Error('the expression returned undefined');
`;
  // --trace-gc-nvp prints one line a collection; a scavenge's "promoted=" is V8's own count.
  const run = spawnSync(process.execPath, ['--expose-gc', '--trace-gc-nvp', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (run.status !== 0) throw new Error(`the promotion probe failed (${run.status}): ${run.stderr}`);
  let scavenges = 0;
  let promotedBytes = 0;
  for (const line of run.stdout.matchAll(/\bgc=s\b.*?\bpromoted=(\d+)/g)) {
    scavenges++;
    promotedBytes += Number(line[1]);
  }
  return { scavenges, promotedBytes };
}
