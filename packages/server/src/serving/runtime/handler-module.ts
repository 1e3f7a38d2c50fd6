// Loading a model version's handler module (ferry.yaml `handler:`) inside an inference worker thread.
// A `.ts` handler has its types stripped by amaro (the type stripper Node itself uses for
// --experimental-strip-types, so a handler that runs under Node's own TypeScript support runs here the
// same) and is imported from a compiled copy under the OS temp folder; a `.js` handler is imported where
// it lies. Each import carries the file's content hash, so a version reloaded with a changed handler
// gets the new code, not Node's cached module.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import amaro from 'amaro';
import type { ModelHandler } from '@ferry/core';

const HOOKS = ['preprocess', 'postprocess', 'predict', 'setup'] as const;

/** Which parts of the contract's own path a handler replaces (sent back to the main thread at load). */
export interface HandlerShape {
  preprocess: boolean;
  postprocess: boolean;
  predict: boolean;
}

export async function importHandler(path: string): Promise<{ handler: ModelHandler; shape: HandlerShape }> {
  const source = readFileSync(path, 'utf8');
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  let url: string;
  if (/\.m?ts$/.test(path)) {
    let code: string;
    try {
      code = amaro.transformSync(source, { mode: 'strip-only' }).code;
    } catch (e) {
      throw new Error(`handler ${basename(path)} is not valid TypeScript: ${(e as Error).message}`);
    }
    const dir = join(tmpdir(), 'ferry-handlers');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${basename(path).replace(/\.m?ts$/, '')}-${hash}.mjs`);
    // Written beside and renamed: workers loading the same handler at once never import half a file.
    const partial = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
    writeFileSync(partial, code);
    renameSync(partial, file);
    url = pathToFileURL(file).href;
  } else {
    url = `${pathToFileURL(path).href}?v=${hash}`;
  }
  const mod = (await import(url)) as { default?: unknown };
  const handler = (mod.default ?? mod) as Record<string, unknown>;
  if (!handler || typeof handler !== 'object')
    throw new Error(`handler ${basename(path)} must export a ModelHandler object (its default export)`);
  for (const hook of HOOKS)
    if (handler[hook] !== undefined && typeof handler[hook] !== 'function')
      throw new Error(`handler ${basename(path)}: "${hook}" must be a function`);
  const shape: HandlerShape = {
    preprocess: typeof handler.preprocess === 'function',
    postprocess: typeof handler.postprocess === 'function',
    predict: typeof handler.predict === 'function',
  };
  if (!shape.preprocess && !shape.postprocess && !shape.predict)
    throw new Error(`handler ${basename(path)} exports none of preprocess, postprocess, predict`);
  return { handler: handler as ModelHandler, shape };
}
