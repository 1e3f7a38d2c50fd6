// Lets a generator module be both imported (by build-all and tests) and run as a script.
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** True when the module with this `import.meta.url` is the script node was started with. */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === moduleUrl;
  } catch {
    return false;
  }
}
