// Route schemas shared by the plugins: path parameters, problem responses and the shared component
// schemas (Problem, Job, V2 tensors). @fastify/swagger (dynamic mode) builds /openapi.json from them.
// They document and do not validate: each route checks its input itself and names the bad field
// with Ferry's error codes (http/app.ts installs a validator compiler that accepts).
import { Type, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { ERROR_CATALOGUE } from '../errors.js';

type Json = Record<string, unknown>;

export const ModelName = Type.String({ description: '`name`, `name@1`, `name@1.2.0` or `name@alias`' });
export const VersionName = Type.String({ description: 'exact version, major (`1`), `latest` or an alias' });
export const ModelParams = Type.Object({ model: ModelName });
export const ModelVersionParams = Type.Object({ model: ModelName, version: VersionName });
export const WindowQuery = Type.Object({
  window: Type.Optional(Type.String({ description: 'recent traffic to look at: 30m, 24h, 7d (at most 90d)' })),
});
export const AnyObject = Type.Object({}, { additionalProperties: true });

/** A reference to a shared schema (`addSharedSchemas`); swagger turns it into `#/components/schemas/<id>`. */
export const ref = (id: string): Json => ({ $ref: `${id}#` });

export const problem = (description: string): Json => ({
  description,
  content: { 'application/problem+json': { schema: ref('Problem') } },
});
export const json = (description: string, schema: TSchema | Json = AnyObject): Json => ({
  description,
  content: { 'application/json': { schema } },
});
export const text = (description: string, type: string): Json => ({
  description,
  content: { [type]: { schema: Type.String() } },
});
export const eventStream = (description: string): Json => text(description, 'text/event-stream');

export const PREDICT_ERRORS = {
  400: problem('Invalid input: `errors` lists the JSON pointer and reason of each bad field'),
  404: problem('Unknown model or version; `available` lists what exists'),
  413: problem('Body larger than `server.bodyLimitBytes`'),
  503: problem('Model not ready or server overloaded; honour `Retry-After`'),
};

/** A route's schema: tags and summary always, the rest where the route has them. */
export type RouteParts = Omit<FastifySchema, 'tags' | 'summary'> & Json;

export function route(tags: string, summary: string, parts: RouteParts = {}): FastifySchema {
  return { tags: [tags], summary, ...parts } as FastifySchema;
}

export const PROBLEM = {
  $id: 'Problem',
  type: 'object',
  description: 'RFC 9457 problem details; `code` is stable (see docs/errors.md)',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string', enum: Object.keys(ERROR_CATALOGUE) },
    instance: { type: 'string' },
    requestId: { type: 'string' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { pointer: { type: 'string' }, reason: { type: 'string' } },
        required: ['pointer', 'reason'],
      },
    },
  },
  required: ['type', 'title', 'status', 'detail', 'code'],
};

const V2_INFER_REQUEST = {
  $id: 'V2InferRequest',
  type: 'object',
  properties: {
    id: { type: 'string' },
    parameters: { type: 'object' },
    inputs: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          shape: { type: 'array', items: { type: 'integer' } },
          datatype: { type: 'string' },
          parameters: { type: 'object' },
          data: { type: 'array' },
        },
        required: ['name', 'shape', 'datatype', 'data'],
      },
    },
    outputs: {
      type: 'array',
      items: {
        type: 'object',
        properties: { name: { type: 'string' }, parameters: { type: 'object' } },
        required: ['name'],
      },
    },
  },
  required: ['inputs'],
};

const V2_INFER_RESPONSE = {
  $id: 'V2InferResponse',
  type: 'object',
  properties: {
    model_name: { type: 'string' },
    model_version: { type: 'string' },
    id: { type: 'string' },
    outputs: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          shape: { type: 'array', items: { type: 'integer' } },
          datatype: { type: 'string' },
          data: { type: 'array' },
        },
      },
    },
  },
  required: ['model_name', 'outputs'],
};

const JOB = {
  $id: 'Job',
  type: 'object',
  required: [
    'id',
    'model',
    'version',
    'state',
    'progress',
    'result',
    'error',
    'attempts',
    'maxAttempts',
    'createdAt',
    'startedAt',
    'finishedAt',
  ],
  properties: {
    id: { type: 'string', format: 'uuid' },
    model: { type: 'string' },
    version: { type: 'string' },
    state: { enum: ['queued', 'active', 'completed', 'failed', 'cancelled'] },
    progress: { type: 'number', minimum: 0, maximum: 1 },
    result: {
      type: ['object', 'null'],
      properties: {
        predictions: { type: 'array' },
        worker: { type: 'string', description: 'the worker process that computed the result: host:pid:id' },
      },
    },
    error: {
      type: ['object', 'null'],
      properties: { code: { type: 'string' }, detail: { type: 'string' }, errors: { type: 'array' } },
    },
    attempts: { type: 'integer' },
    maxAttempts: { type: 'integer' },
    createdAt: { type: 'string', format: 'date-time' },
    startedAt: { type: ['string', 'null'], format: 'date-time' },
    finishedAt: { type: ['string', 'null'], format: 'date-time' },
    cancelRequested: { type: 'boolean' },
    callback: {
      type: 'object',
      properties: {
        url: { type: 'string' },
        state: { type: ['string', 'null'] },
        attempts: { type: 'integer' },
        error: { type: ['string', 'null'] },
      },
    },
  },
};

/** Registers the schemas routes refer to with `ref(id)`; they appear under components.schemas. */
export function addSharedSchemas(app: FastifyInstance): void {
  for (const s of [PROBLEM, V2_INFER_REQUEST, V2_INFER_RESPONSE, JOB]) app.addSchema(s);
}
