// The job routes in the OpenAPI document (merged into http/openapi.ts's paths and schemas).
type Doc = Record<string, unknown>;

const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } });
const job = { content: { 'application/json': { schema: { $ref: '#/components/schemas/Job' } } } };
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const modelParam = { name: 'model', in: 'path', required: true, schema: { type: 'string' }, description: '`name`, `name@1`, `name@1.2.0` or `name@alias`' };
const versionParam = { name: 'version', in: 'path', required: true, schema: { type: 'string' } };

export const JOB_SCHEMA: Doc = {
  type: 'object',
  required: ['id', 'model', 'version', 'state', 'progress', 'result', 'error', 'attempts', 'maxAttempts', 'createdAt', 'startedAt', 'finishedAt'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    model: { type: 'string' },
    version: { type: 'string' },
    state: { enum: ['queued', 'active', 'completed', 'failed', 'cancelled'] },
    progress: { type: 'number', minimum: 0, maximum: 1 },
    result: { type: ['object', 'null'], properties: { predictions: { type: 'array' }, worker: { type: 'string', description: 'the worker process that computed the result: host:pid:id' } } },
    error: { type: ['object', 'null'], properties: { code: { type: 'string' }, detail: { type: 'string' }, errors: { type: 'array' } } },
    attempts: { type: 'integer' },
    maxAttempts: { type: 'integer' },
    createdAt: { type: 'string', format: 'date-time' },
    startedAt: { type: ['string', 'null'], format: 'date-time' },
    finishedAt: { type: ['string', 'null'], format: 'date-time' },
    cancelRequested: { type: 'boolean' },
    callback: { type: 'object', properties: { url: { type: 'string' }, state: { type: ['string', 'null'] }, attempts: { type: 'integer' }, error: { type: ['string', 'null'] } } },
  },
};

const submit = (params: unknown[]) => ({
  post: {
    tags: ['jobs'],
    summary: 'Submit an asynchronous job: a /predict body (plus optional callbackUrl, timeoutMs), a raw image, or multipart image files',
    parameters: [...params, { name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 255 } }],
    requestBody: {
      required: true,
      content: {
        'application/json': { schema: { type: 'object', properties: { instances: { type: 'array' }, inputs: { type: 'object' }, callbackUrl: { type: 'string', format: 'uri' }, timeoutMs: { type: 'integer', minimum: 1 } } } },
        'multipart/form-data': { schema: { type: 'object', properties: { image: { type: 'array', items: { type: 'string', format: 'binary' } }, callbackUrl: { type: 'string' }, timeoutMs: { type: 'string' } } } },
        'image/*': { schema: { type: 'string', format: 'binary' } },
      },
    },
    responses: {
      202: { description: 'Accepted; `Location: /v1/jobs/{id}`', headers: { Location: { schema: { type: 'string' } } }, ...job },
      400: problem('Invalid input, caught at submission; `errors` names each bad field'),
      404: problem('Unknown model or version'),
      415: problem('A file upload to a model without an image input'),
      422: problem('Idempotency-Key reused with another request'),
      503: problem('The queue cannot be reached'),
    },
  },
});

export function jobPaths(): Doc {
  return {
    '/v1/models/{model}/jobs': submit([modelParam]),
    '/v1/models/{model}/versions/{version}/jobs': submit([modelParam, versionParam]),
    '/v1/jobs': {
      get: {
        tags: ['jobs'],
        summary: 'List jobs, newest first (results left out)',
        parameters: [
          { name: 'model', in: 'query', schema: { type: 'string' } },
          { name: 'state', in: 'query', schema: { enum: ['queued', 'active', 'completed', 'failed', 'cancelled'] } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } },
          { name: 'cursor', in: 'query', schema: { type: 'string' } },
        ],
        responses: {
          200: { description: 'A page of jobs and the cursor of the next', content: { 'application/json': { schema: { type: 'object', properties: { jobs: { type: 'array', items: { $ref: '#/components/schemas/Job' } }, nextCursor: { type: ['string', 'null'] } } } } } },
          400: problem('Bad query parameter'),
        },
      },
    },
    '/v1/jobs/{id}': {
      get: { tags: ['jobs'], summary: 'A job: state, progress, result or error', parameters: [idParam], responses: { 200: { description: 'The job', ...job }, 404: problem('No such job') } },
      delete: {
        tags: ['jobs'], summary: 'Cancel a queued job (200), or ask an active one to stop (202)', parameters: [idParam],
        responses: { 200: { description: 'Cancelled', ...job }, 202: { description: 'Asked to stop', ...job }, 404: problem('No such job'), 409: problem('The job already ended') },
      },
    },
    '/v1/jobs/{id}/events': {
      get: {
        tags: ['jobs'], summary: 'Server-Sent Events: one event per state or progress change, ending with the final document', parameters: [idParam],
        responses: { 200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, 404: problem('No such job') },
      },
    },
  };
}
