// `ferry serve --watch`: picks up repository changes on disk. Bursts of file events (a copy of a
// model folder) are folded into one reload once the files have been quiet for `debounceMs`.
import chokidar from 'chokidar';
import type { Logger } from 'pino';
import type { ModelManager } from './model-manager.js';

export function watchRepository(
  root: string,
  manager: ModelManager,
  log: Logger,
  debounceMs = 750,
): { close(): Promise<void> } {
  const watcher = chokidar.watch(root, {
    ignoreInitial: true,
    awaitWriteFinish: { stabilityThreshold: 300, pollInterval: 100 },
    depth: 3,
  });
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      const r = await manager.reloadRepository();
      log.info(
        { loaded: r.loaded, reloaded: r.reloaded, unloaded: r.unloaded, failed: r.failed },
        'repository change applied',
      );
    } catch (err) {
      log.error({ err }, 'repository reload failed');
    } finally {
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void run(), debounceMs);
  };
  watcher.on('all', schedule);
  watcher.on('error', (err) => log.warn({ err }, 'repository watcher error'));
  return {
    async close() {
      if (timer) clearTimeout(timer);
      await watcher.close();
    },
  };
}
