// What an example model generator declares, and the up-to-date check that lets `npm run models` (run
// by every `npm ci`) skip work: a version folder is fresh when its `.ferry-build.json` marker records
// the same hash of the generator's inputs (its sources and data) and the outputs are unchanged since.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { MODELS_DIR, REPO_ROOT } from './paths.js';

export type ArtifactFiles = Record<string, Uint8Array | string>;

export interface ExampleModel {
  readonly name: string;
  readonly version: string;
  /**
   * Everything the output bytes depend on, as paths relative to the repository root: source files,
   * source folders (their non-test .ts files) and data files. Absolute paths (data found through
   * node_modules) are hashed by content only, so a different node_modules layout is no change.
   * List only what the generator uses: every change here means a rebuild.
   */
  readonly inputs: readonly string[];
  /** Produces the version folder's files, deterministically. */
  build(): Promise<ArtifactFiles>;
}

export const MARKER = '.ferry-build.json';

/** The parts of the ONNX toolkit (@ferry/tools) a generator's output bytes depend on. */
export const BUILDER_SOURCES: readonly string[] = [
  'packages/tools/src/onnx/graph-builder.ts',
  'packages/tools/src/onnx/proto.ts',
  'packages/tools/src/onnx/errors.ts',
];

interface Marker {
  generator: string;
  inputs: string;
  outputs: Record<string, string>;
}

const sha256 = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((d) => (d.isDirectory() ? sourceFiles(join(dir, d.name)) : [join(dir, d.name)]))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .sort();
}

// Line endings normalised so that a Windows checkout hashes the same.
const sourceText = (file: string): string => readFileSync(file, 'utf8').replace(/\r\n/g, '\n');

/** Hash of the generator's inputs. */
export function inputsHash(model: ExampleModel): string {
  const h = createHash('sha256').update(`${model.name}@${model.version}\n`);
  for (const input of model.inputs) {
    const path = input.startsWith('/') ? input : join(REPO_ROOT, input);
    const label = input.startsWith('/') ? '(data)' : input;
    if (!existsSync(path)) {
      h.update(`missing ${label}\n`);
    } else if (statSync(path).isDirectory()) {
      for (const f of sourceFiles(path)) h.update(`${relative(REPO_ROOT, f)}\n`).update(sourceText(f));
    } else {
      h.update(`${label}\n`).update(path.endsWith('.ts') ? sourceText(path) : readFileSync(path));
    }
  }
  return h.digest('hex');
}

export function versionDir(model: ExampleModel, modelsDir = MODELS_DIR): string {
  return join(modelsDir, model.name, model.version);
}

function readMarker(dir: string): Marker | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, MARKER), 'utf8')) as Marker;
  } catch {
    return undefined;
  }
}

/** Why the version folder must be rebuilt, or undefined when it is fresh. */
export function staleReason(model: ExampleModel, modelsDir = MODELS_DIR): string | undefined {
  const dir = versionDir(model, modelsDir);
  // The marker lists every output file with its hash (model.onnx, or a pipeline's det/rec files).
  const marker = readMarker(dir);
  if (!marker) return `${MARKER} is missing or unreadable`;
  if (marker.inputs !== inputsHash(model)) return 'the generator or its data changed';
  for (const [file, hash] of Object.entries(marker.outputs)) {
    const path = join(dir, file);
    if (!existsSync(path)) return `${file} is missing`;
    if (sha256(readFileSync(path)) !== hash) return `${file} was modified`;
  }
  return undefined;
}

/** Builds the model into its version folder and records the marker. */
export async function writeExample(model: ExampleModel, modelsDir = MODELS_DIR): Promise<string[]> {
  const files = await model.build();
  const dir = versionDir(model, modelsDir);
  mkdirSync(dir, { recursive: true });
  const outputs: Record<string, string> = {};
  for (const [file, content] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) {
    writeFileSync(join(dir, file), content);
    outputs[file] = sha256(content);
  }
  const marker: Marker = { generator: `${model.name}@${model.version}`, inputs: inputsHash(model), outputs };
  writeFileSync(join(dir, MARKER), `${JSON.stringify(marker, null, 2)}\n`);
  return Object.keys(outputs);
}
