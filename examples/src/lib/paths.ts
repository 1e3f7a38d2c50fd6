// Where the example generators read and write: the repository root, found from this module's own
// location so the scripts work from any working directory (npm runs `prepare` from the root).
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The repository root: this file sits at examples/{src,dist}/lib/. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The example model repository. */
export const MODELS_DIR = join(REPO_ROOT, 'models');
