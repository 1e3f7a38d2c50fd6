// Starts a real Ferry server over a temporary model repository, for tests (driven with inject()).
import { createServer, loadConfig, type FerryConfig, type FerryServer } from '@ferry/server';
import { tempModelRepository, writeModelVersion, type ModelVersionFiles } from './fixture-models.js';

export interface TestModel {
  name: string;
  version: string;
  files: ModelVersionFiles;
}

export interface TestServer {
  server: FerryServer;
  repoDir: string;
  close(): Promise<void>;
}

/**
 * Starts an in-process server (driven with inject(), not listening) over an existing model repository,
 * with the tests' defaults: silent log, an in-memory store, one warm-up run, `runtime.workers` 2.
 */
export async function startServerOn(
  modelsDir: string,
  overrides: Record<string, unknown> = {},
  opts: { wait?: boolean } = {},
): Promise<FerryServer> {
  const cfg: FerryConfig = loadConfig({
    env: {},
    overrides: {
      'models.dir': modelsDir,
      'runtime.workers': 2,
      'runtime.warmupRuns': 1,
      'log.level': 'silent',
      'store.url': 'sqlite::memory:',
      // Tests count the rows they log: no global rate cap (the cap has its own test).
      'predictionLog.maxEntriesPerSecond': 0,
      'server.port': 0,
      'server.host': '127.0.0.1',
      ...overrides,
    },
  });
  const server = await createServer(cfg, { logger: false });
  if (opts.wait !== false) await server.loaded;
  return server;
}

/** Writes the models, starts a server (not listening unless `listen`), waits until every model is warm. */
export async function startTestServer(
  models: TestModel[],
  overrides: Record<string, unknown> = {},
  opts: { wait?: boolean } = {},
): Promise<TestServer> {
  const repo = await tempModelRepository();
  for (const m of models) await writeModelVersion(repo.dir, m.name, m.version, m.files);
  const server = await startServerOn(repo.dir, overrides, opts);
  return {
    server,
    repoDir: repo.dir,
    async close() {
      await server.close();
      await repo.remove();
    },
  };
}
