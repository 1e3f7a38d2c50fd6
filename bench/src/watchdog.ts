// Launcher for every process the bench starts: `node watchdog.js <script> [args...]` exits when the
// bench that started it is gone (even after SIGKILL, when no cleanup handler runs), then runs
// <script> in this same process with the remaining arguments as its argv.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [script, ...rest] = process.argv.slice(2);
if (!script) {
  process.stderr.write('usage: watchdog.js <script> [args...]\n');
  process.exit(2);
}
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(1);
}, 500).unref();
process.argv = [process.argv[0]!, resolve(script), ...rest];
await import(pathToFileURL(resolve(script)).href);
