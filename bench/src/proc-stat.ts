// CPU time of another process (all its threads) from /proc/<pid>/stat, on Linux; null elsewhere.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(r.stdout?.trim());
    ticksPerSecond = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return ticksPerSecond;
}

/**
 * The sum of two fields of /proc/<who>/stat in CPU seconds, counted from the field after the command
 * name (the state, field 3): the name may hold spaces, the fields after its closing parenthesis are fixed.
 */
function statSeconds(who: number | 'self', a: number, b: number): number | null {
  try {
    const stat = readFileSync(`/proc/${who}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[a]) + Number(fields[b])) / clockTicks();
  } catch {
    return null;
  }
}

/** User + system CPU seconds used so far by `pid` (utime + stime). */
export function processCpuSeconds(pid: number): number | null {
  return statSeconds(pid, 11, 12);
}

/**
 * User + system CPU seconds of this process's children that have exited and been reaped (cutime +
 * cstime of /proc/self/stat): the CPU a load generator run as a child used.
 */
export function reapedChildrenCpuSeconds(): number | null {
  return statSeconds('self', 13, 14);
}

/** Busy CPU seconds of the whole machine so far (all processes, all CPUs), from /proc/stat. */
export function machineBusySeconds(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / clockTicks();
  } catch {
    return null;
  }
}
