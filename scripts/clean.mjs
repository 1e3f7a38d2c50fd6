// Removes every build output (dist/ folders and TypeScript's build info). `tsc -b` never deletes the
// output of a source file that moved or was removed, so a stale test could still run; and a dist/
// removed by hand leaves build info behind that makes `tsc -b` think nothing needs building.
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

const skip = new Set(['node_modules', '.git', 'models']);
function walk(dir) {
  for (const e of readdirSync(dir)) {
    if (skip.has(e)) continue;
    const p = join(dir, e);
    if (e === 'dist' || e.endsWith('.tsbuildinfo')) rmSync(p, { recursive: true, force: true });
    else if (statSync(p).isDirectory()) walk(p);
  }
}
walk('.');
