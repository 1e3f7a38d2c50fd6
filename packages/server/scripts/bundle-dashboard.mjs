// `prepack` of @ferry/server: copies the built dashboard (packages/dashboard/dist) into this package's
// dashboard/ folder, so `ferry serve` installed from the registry serves it at `/` like the monorepo does.
// Fails when the dashboard is not built: a tarball without it would serve the "not built" page.
import { cpSync, existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const from = fileURLToPath(new URL('../../dashboard/dist', import.meta.url));
const to = fileURLToPath(new URL('../dashboard', import.meta.url));
if (!existsSync(`${from}/index.html`)) {
  console.error(`bundle-dashboard: ${from}/index.html is missing; run \`npm run build\` first`);
  process.exit(1);
}
rmSync(to, { recursive: true, force: true });
cpSync(from, to, { recursive: true });
console.error(`bundle-dashboard: copied ${from} to ${to}`);
