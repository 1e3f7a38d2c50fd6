// The /openai/v1 routes in Ferry's OpenAPI document (merged into /openapi.json when the repository
// has generative models). The request schemas say what Ferry accepts, which is narrower than OpenAI's.
type Doc = Record<string, unknown>;

const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } });
const errors = {
  400: problem('Bad parameter: `errors[].pointer` and OpenAI\'s `error.param` name it'),
  404: problem('Unknown model or version'),
  413: problem('Body larger than `server.bodyLimitBytes`'),
  415: problem('Not application/json'),
  503: problem('Model loading or generation.maxConcurrent reached; honour `Retry-After`'),
};

const common = {
  model: { type: 'string', description: 'Generative model: `name`, `name@1`, `name@1.0.0` or `name@alias`' },
  max_tokens: { type: ['integer', 'null'], minimum: 1 },
  temperature: { type: ['number', 'null'], minimum: 0, maximum: 2 },
  top_p: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 1 },
  stop: { oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: 4 }, { type: 'null' }] },
  seed: { type: ['integer', 'null'] },
  n: { type: ['integer', 'null'], enum: [1, null] },
  stream: { type: ['boolean', 'null'] },
  stream_options: { type: ['object', 'null'], properties: { include_usage: { type: 'boolean' } } },
  user: { type: 'string' },
};

const sse = (what: string) => ({
  description: `\`stream: false\`: one ${what} with \`usage\`. \`stream: true\`: text/event-stream of \`data:\` chunks ending \`data: [DONE]\``,
  content: { 'application/json': { schema: { type: 'object' } }, 'text/event-stream': { schema: { type: 'string' } } },
});

export function openAiOpenApiPaths(prefix: string): Doc {
  return {
    [`${prefix}/models`]: { get: { tags: ['openai'], summary: 'List generative models (OpenAI format)', responses: { 200: { description: '`{object: "list", data: [{id, object: "model", ...}]}`' } } } },
    [`${prefix}/chat/completions`]: {
      post: {
        tags: ['openai'], summary: 'Chat completion, streamed token by token or whole (OpenAI-compatible)',
        requestBody: { required: true, content: { 'application/json': { schema: {
          type: 'object', required: ['model', 'messages'],
          properties: {
            ...common,
            max_completion_tokens: { type: ['integer', 'null'], minimum: 1 },
            messages: { type: 'array', minItems: 1, items: { type: 'object', required: ['role', 'content'], properties: {
              role: { type: 'string', enum: ['system', 'developer', 'user', 'assistant'] },
              content: { oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'object', required: ['type', 'text'], properties: { type: { const: 'text' }, text: { type: 'string' } } } }] },
              name: { type: 'string' },
            } } },
          },
        } } } },
        responses: { 200: sse('chat.completion'), ...errors },
      },
    },
    [`${prefix}/completions`]: {
      post: {
        tags: ['openai'], summary: 'Text completion of a prompt (OpenAI-compatible)',
        requestBody: { required: true, content: { 'application/json': { schema: {
          type: 'object', required: ['model', 'prompt'],
          properties: { ...common, prompt: { oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 1 }] } },
        } } } },
        responses: { 200: sse('text_completion'), ...errors },
      },
    },
  };
}
