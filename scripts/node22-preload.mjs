// Preloaded by scripts/node22.mjs (NODE_OPTIONS=--import, so child processes and worker threads get it
// too): sends better-sqlite3's `require` of its compiled addon to the Node 22 build named by
// FERRY_BETTER_SQLITE3_ADDON, leaving the checkout's build for the Node that installed it untouched.
import { registerHooks } from 'node:module';
import { pathToFileURL } from 'node:url';

const addon = process.env.FERRY_BETTER_SQLITE3_ADDON;
if (addon) {
  const target = pathToFileURL(addon).href;
  registerHooks({
    resolve(specifier, context, next) {
      if (specifier.endsWith('better_sqlite3.node')) return { url: target, shortCircuit: true };
      return next(specifier, context);
    },
  });
}
