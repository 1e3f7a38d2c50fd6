// Where the bench finds the repository it measures. Compiled files live in bench/dist/, so the
// repository root is two levels up from this module (the same from src/ under a TS runner).
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MODELS_DIR = join(REPO_ROOT, 'models');
export const FERRY_CLI = join(REPO_ROOT, 'packages/server/dist/cli/main.js');
export const BENCH_DIST = fileURLToPath(new URL('./', import.meta.url));
export const DEFAULT_OUT = join(REPO_ROOT, 'bench/results/latest.json');
