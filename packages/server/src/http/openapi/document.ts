// The per-model part of /openapi.json, derived from the model repository: each served version's
// predict path with the request and response schemas of its contract, so the document cannot drift
// from what is served. The rest of the document comes from the route schemas (http/app.ts).
import { predictRequestSchema, predictResponseSchema, type RequestLimits } from '@ferry/core';
import type { Repository } from '../../serving/repository/index.js';
import { PROBLEM } from '../schemas.js';

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

/** Per-model predict paths and their component schemas (`<model>_<version>_PredictRequest`, ...). */
export function modelPaths(repo: Repository, limits: RequestLimits): { paths: Doc; schemas: Doc } {
  const schemas: Doc = {};
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
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { $ref: `#/components/schemas/${req}` } } },
        },
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
    paths[`/v1/models/${m.name}/predict`] = predictOp(
      m.name,
      def.version,
      `Predict with ${m.name} (default version, now ${def.version})`,
    );
    for (const v of m.versions) {
      paths[`/v1/models/${m.name}/versions/${v.version}/predict`] = predictOp(
        m.name,
        v.version,
        `Predict with ${m.name} ${v.version}`,
      );
    }
  }

  return { paths, schemas };
}

/** A standalone OpenAPI 3.1 document of the per-model predict paths (the served one is /openapi.json). */
export function buildOpenApi(repo: Repository, limits: RequestLimits, serverVersion: string): Doc {
  const { paths, schemas } = modelPaths(repo, limits);
  const { $id: _id, ...problemSchema } = PROBLEM;
  return {
    openapi: '3.1.0',
    info: {
      title: 'Ferry',
      version: serverVersion,
      description: 'Model serving for TypeScript web apps. Errors are application/problem+json with a stable `code`.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    paths,
    components: { schemas: { Problem: problemSchema, ...schemas } },
  };
}
