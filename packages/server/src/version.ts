// The server's own version, reported by /v2 and the OpenAPI document.
import { createRequire } from 'node:module';

const pkg = createRequire(import.meta.url)('../package.json') as { version: string };
export const SERVER_VERSION: string = pkg.version;
