// The OpenAPI 3.1 document, derived from the model repository: each model's predict request and
// response schemas come from its contract, so the document cannot drift from what is served.
import { predictRequestSchema, predictResponseSchema, type RequestLimits } from '@ferry/core';
import type { Repository } from '../../serving/repository/index.js';
import { ERROR_CATALOGUE } from '../../errors.js';
import { JOB_SCHEMA, jobPaths } from './jobs.js';

type Doc = Record<string, unknown>;

const componentName = (model: string, version: string, what: string): string =>
  `${model}_${version}_${what}`.replace(/[^A-Za-z0-9._-]/g, '_');

const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

const errorResponses = {
  400: problemResponse('Invalid input: `errors` lists the JSON pointer and reason of each bad field'),
  404: problemResponse('Unknown model or version; `available` lists what exists'),
  413: problemResponse('Body larger than `server.bodyLimitBytes`'),
  503: problemResponse('Model not ready or server overloaded; honour `Retry-After`'),
};

const modelParam = { name: 'model', in: 'path', required: true, schema: { type: 'string' }, description: '`name`, `name@1`, `name@1.2.0` or `name@alias`' };
const versionParam = { name: 'version', in: 'path', required: true, schema: { type: 'string' }, description: 'exact version, major (`1`), `latest` or an alias' };

export function buildOpenApi(repo: Repository, limits: RequestLimits, serverVersion: string): Doc {
  const schemas: Doc = {
    Problem: {
      type: 'object',
      description: 'RFC 9457 problem details; `code` is stable (see docs/errors.md)',
      properties: {
        type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' }, detail: { type: 'string' },
        code: { type: 'string', enum: Object.keys(ERROR_CATALOGUE) }, instance: { type: 'string' }, requestId: { type: 'string' },
        errors: { type: 'array', items: { type: 'object', properties: { pointer: { type: 'string' }, reason: { type: 'string' } }, required: ['pointer', 'reason'] } },
      },
      required: ['type', 'title', 'status', 'detail', 'code'],
    },
    V2InferRequest: {
      type: 'object',
      properties: {
        id: { type: 'string' }, parameters: { type: 'object' },
        inputs: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, shape: { type: 'array', items: { type: 'integer' } }, datatype: { type: 'string' }, parameters: { type: 'object' }, data: { type: 'array' } }, required: ['name', 'shape', 'datatype', 'data'] } },
        outputs: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, parameters: { type: 'object' } }, required: ['name'] } },
      },
      required: ['inputs'],
    },
    V2InferResponse: {
      type: 'object',
      properties: {
        model_name: { type: 'string' }, model_version: { type: 'string' }, id: { type: 'string' },
        outputs: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, shape: { type: 'array', items: { type: 'integer' } }, datatype: { type: 'string' }, data: { type: 'array' } } } },
      },
      required: ['model_name', 'outputs'],
    },
  };
  const paths: Doc = {};

  const predictOp = (model: string, version: string, summary: string) => {
    const v = repo.resolve(model, version);
    const req = componentName(model, v.version, 'PredictRequest');
    const res = componentName(model, v.version, 'PredictResponse');
    schemas[req] = predictRequestSchema(v.manifest, limits);
    schemas[res] = predictResponseSchema(v.manifest);
    return {
      post: {
        tags: [model],
        summary,
        operationId: `predict_${componentName(model, version, '')}`.replace(/_+$/, ''),
        ...(v.manifest.description && { description: v.manifest.description }),
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${req}` } } } },
        responses: {
          200: {
            description: 'One prediction per instance; `Ferry-Model-Version` names the version that answered',
            headers: { 'Ferry-Model-Version': { schema: { type: 'string' } } },
            content: { 'application/json': { schema: { $ref: `#/components/schemas/${res}` } } },
          },
          ...errorResponses,
        },
      },
    };
  };

  for (const m of repo.models()) {
    const def = repo.resolve(m.name);
    paths[`/v1/models/${m.name}/predict`] = predictOp(m.name, def.version, `Predict with ${m.name} (default version, now ${def.version})`);
    for (const v of m.versions) {
      paths[`/v1/models/${m.name}/versions/${v.version}/predict`] = predictOp(m.name, v.version, `Predict with ${m.name} ${v.version}`);
    }
  }

  const get = (summary: string, tag: string, params: unknown[] = [], extra: Doc = {}) => ({
    get: { tags: [tag], summary, ...(params.length && { parameters: params }), responses: { 200: { description: 'OK', content: { 'application/json': { schema: { type: 'object' } } } }, ...extra } },
  });

  Object.assign(paths, {
    '/v1/models': get('List models, their versions and aliases', 'models'),
    '/v1/models/{model}': get('Describe a model: contract, JSON Schemas, card', 'models', [modelParam], { 404: errorResponses[404] }),
    '/v1/models/{model}/versions/{version}': get('Describe one version', 'models', [modelParam, versionParam], { 404: errorResponses[404] }),
    '/healthz': get('Liveness: the process answers', 'health'),
    '/readyz': get('Readiness: 200 once every model is loaded and warmed, else 503', 'health', [], { 503: { description: 'Not ready yet' } }),
    '/metrics': { get: { tags: ['health'], summary: 'Prometheus metrics', responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
    '/v2': get('Open Inference Protocol: server metadata', 'open-inference-protocol'),
    '/v2/health/live': get('Open Inference Protocol: liveness', 'open-inference-protocol'),
    '/v2/health/ready': get('Open Inference Protocol: readiness', 'open-inference-protocol'),
    '/v2/models/{model}': get('Open Inference Protocol: model metadata', 'open-inference-protocol', [modelParam]),
    '/v2/models/{model}/ready': get('Open Inference Protocol: model readiness', 'open-inference-protocol', [modelParam]),
    '/v2/models/{model}/versions/{version}': get('Open Inference Protocol: model version metadata', 'open-inference-protocol', [modelParam, versionParam]),
  });
  for (const [path, params] of [['/v2/models/{model}/infer', [modelParam]], ['/v2/models/{model}/versions/{version}/infer', [modelParam, versionParam]]] as const) {
    paths[path] = {
      post: {
        tags: ['open-inference-protocol'],
        summary: 'Open Inference Protocol: infer with JSON tensors (the model\'s tensors, or one column per contract feature)',
        parameters: params,
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/V2InferRequest' } } } },
        responses: { 200: { description: 'Output tensors', content: { 'application/json': { schema: { $ref: '#/components/schemas/V2InferResponse' } } } }, ...errorResponses },
      },
    };
  }

  Object.assign(paths, jobPaths());
  schemas.Job = JOB_SCHEMA;

  return {
    openapi: '3.1.0',
    info: { title: 'Ferry', version: serverVersion, description: 'Model serving for TypeScript web apps. Errors are application/problem+json with a stable `code`.' },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    paths,
    components: { schemas },
  };
}
