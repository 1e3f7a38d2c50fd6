// Fixtures for the rollout and access tests: tiny real models whose answers differ in known ways,
// and a server over a repository the test can change on disk.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GraphBuilder } from '@ferry/tools/onnx';
import { createServer, loadConfig, type FerryServer } from '@ferry/server';
import { tempModelRepository, writeModelVersion, type ModelVersionFiles } from './fixture-models.js';

/** y = 0.5·x0 + x1 + bias over float32 x[batch, 2]: versions differ by exactly their bias. */
export function biasModel(bias: number): ModelVersionFiles {
  const g = new GraphBuilder({ name: `bias-${bias}` });
  g.input('x', 'float32', ['batch', 2]).output('y', 'float32', ['batch', 1]);
  g.floatInitializer('w', [0.5, 1], [2, 1]).floatInitializer('b', [bias]);
  g.node('Add', [g.op('MatMul', ['x', 'w']), 'b'], ['y']);
  return {
    onnx: g.toBytes(),
    manifest: {
      inputs: [{ name: 'x', type: 'tensor', dtype: 'float32', shape: [-1, 2] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 1] }],
      postprocess: { kind: 'regression', output: 'y' },
    },
  };
}

/** Label "yes" when x > threshold: softmax([0, 4(x − t)]) over x[batch, 1]. */
export function thresholdClassifier(threshold: number): ModelVersionFiles {
  const g = new GraphBuilder({ name: `threshold-${threshold}` });
  g.input('x', 'float32', ['batch', 1]).output('p', 'float32', ['batch', 2]);
  g.floatInitializer('w', [0, 4], [1, 2]).floatInitializer('b', [0, -4 * threshold]);
  g.node('Softmax', [g.op('Add', [g.op('MatMul', ['x', 'w']), 'b'])], ['p'], { axis: -1 });
  return {
    onnx: g.toBytes(),
    manifest: {
      inputs: [{ name: 'score', type: 'number', min: -10, max: 10 }],
      preprocess: [{ input: 'x', dtype: 'float32', columns: [{ feature: 'score' }] }],
      outputs: [{ name: 'p', dtype: 'float32', shape: [-1, 2] }],
      postprocess: { kind: 'classification', output: 'p', labels: ['no', 'yes'] },
    },
  };
}

export const softmaxYes = (x: number, t: number): number => 1 / (1 + Math.exp(-4 * (x - t)));

export interface RepoServer {
  server: FerryServer;
  dir: string;
  writeVersion(name: string, version: string, files: ModelVersionFiles): Promise<string>;
  writeAliases(name: string, yaml: string): Promise<void>;
  close(): Promise<void>;
}

/** Writes the repository (models and aliases.yaml), then starts a server over it and waits until warm. */
export async function startRepoServer(
  models: Array<{ name: string; version: string; files: ModelVersionFiles }>,
  aliases: Record<string, string> = {},
  overrides: Record<string, unknown> = {},
  logger?: import('pino').Logger,
): Promise<RepoServer> {
  const repo = await tempModelRepository('ferry-rollout-');
  for (const m of models) await writeModelVersion(repo.dir, m.name, m.version, m.files);
  for (const [name, yaml] of Object.entries(aliases)) await writeFile(join(repo.dir, name, 'aliases.yaml'), yaml);
  const cfg = loadConfig({
    env: {},
    overrides: {
      'models.dir': repo.dir,
      'runtime.workers': 2,
      'runtime.warmupRuns': 1,
      'log.level': 'silent',
      'store.url': 'sqlite::memory:',
      'server.port': 0,
      'server.host': '127.0.0.1',
      ...overrides,
    },
  });
  const server = await createServer(cfg, { logger: logger ?? false });
  await server.loaded;
  return {
    server,
    dir: repo.dir,
    writeVersion: (name, version, files) => writeModelVersion(repo.dir, name, version, files),
    writeAliases: (name, yaml) => writeFile(join(repo.dir, name, 'aliases.yaml'), yaml),
    async close() {
      await server.close();
      await repo.remove();
    },
  };
}
