// The rollout and management routes in /openapi.json, and the bearer scheme when keys are on.
// Management paths are listed only when they exist (with keys configured).
type Doc = Record<string, unknown>;

const json = (description: string) => ({ description, content: { 'application/json': { schema: { type: 'object' } } } });
const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } });
const param = (name: string, description: string) => ({ name, in: 'path', required: true, description, schema: { type: 'string' } });

export function addRolloutPaths(document: Doc, keysConfigured: boolean): void {
  const paths = document.paths as Doc;
  const components = document.components as Doc;
  const hasProblem = Boolean((components.schemas as Doc | undefined)?.Problem);
  const err = (d: string) => (hasProblem ? problem(d) : { description: d });
  paths['/v1/models/{model}/rollout'] = {
    get: {
      tags: ['rollout'], summary: 'Rollout of a model: canary split, shadow comparison (label agreement, score differences, latency, errors), deprecations',
      parameters: [param('model', 'model name')], responses: { 200: json('Rollout status'), 404: err('No such model') },
    },
  };
  if (!keysConfigured) return;
  const admin = (summary: string, parameters: unknown[] = []) => ({
    post: { tags: ['admin'], summary, ...(parameters.length && { parameters }), responses: { 200: json('Change report: loaded, reloaded, unloaded, unchanged, failed, warnings'), 409: err('An alias points to the version'), 422: err('Refused; the served version keeps serving') } },
  });
  paths['/v1/admin/models/{model}/versions/{action}'] = admin('Load or unload a version: {version}:load or {version}:unload', [param('model', 'model name'), param('action', 'e.g. 1.2.0:load')]);
  paths['/v1/admin/repository:reload'] = admin('Re-read API keys and rollout blocks of the configuration (when the server knows its config file), then bring the served models in line with the repository folder');
  paths['/v1/admin/config:reload'] = admin('The same as repository:reload (named for key rotation): API keys, rollout blocks, then the repository; 422 when the configuration is refused (the keys in force stay)');
  paths['/v2/repository/models/{model}/load'] = admin('Open Inference Protocol: load every version of a model', [param('model', 'model name')]);
  paths['/v2/repository/models/{model}/unload'] = admin('Open Inference Protocol: unload a model', [param('model', 'model name')]);
  components.securitySchemes = { bearer: { type: 'http', scheme: 'bearer', description: 'An API key (docs/security.md); scopes: predict, jobs, pipelines:read, admin' } };
  document.security = [{ bearer: [] }];
}
