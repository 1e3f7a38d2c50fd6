// The HTTP layer: Fastify app, routes, problem+json errors and the OpenAPI document.
export { buildApp, type AppOptions } from './app.js';
export { buildOpenApi } from './openapi/document.js';
export type { ServerDeps } from './deps.js';
