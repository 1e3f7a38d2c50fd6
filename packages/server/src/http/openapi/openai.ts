// The schemas of the /openai/v1 routes (in /openapi.json when the repository has generative models).
// The request schemas say what Ferry accepts, which is narrower than OpenAI's.
import { Type } from '@sinclair/typebox';
import { json, problem, route } from '../schemas.js';

const errors = {
  400: problem("Bad parameter: `errors[].pointer` and OpenAI's `error.param` name it"),
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
  stop: {
    oneOf: [
      { type: 'string' },
      { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: 4 },
      { type: 'null' },
    ],
  },
  seed: { type: ['integer', 'null'] },
  n: {
    type: ['integer', 'null'],
    minimum: 1,
    description: 'choices from one shared prefill (up to generation.maxChoices)',
  },
  stream: { type: ['boolean', 'null'] },
  stream_options: { type: ['object', 'null'], properties: { include_usage: { type: 'boolean' } } },
  user: { type: 'string' },
};

const sse = (what: string) => ({
  description: `\`stream: false\`: one ${what} with \`usage\`. \`stream: true\`: text/event-stream of \`data:\` chunks ending \`data: [DONE]\``,
  content: { 'application/json': { schema: { type: 'object' } }, 'text/event-stream': { schema: { type: 'string' } } },
});

const params = Type.Object({ model: Type.String({ description: 'a generative model: `name` or `name@version`' }) });

/** The route schemas of the /openai/v1 plugin. */
export const OPENAI_SCHEMAS = {
  models: route('openai', 'List generative models (OpenAI format)', {
    response: { 200: json('`{object: "list", data: [{id, object: "model", ...}]}`') },
  }),
  model: route('openai', 'Describe one generative model (OpenAI format)', {
    params,
    response: { 200: json('`{id, object: "model", created, owned_by}`'), 404: errors[404] },
  }),
  chat: route('openai', 'Chat completion, streamed token by token or whole (OpenAI-compatible)', {
    body: {
      type: 'object',
      required: ['model', 'messages'],
      properties: {
        ...common,
        max_completion_tokens: { type: ['integer', 'null'], minimum: 1 },
        logprobs: { type: ['boolean', 'null'] },
        top_logprobs: { type: ['integer', 'null'], minimum: 0, maximum: 20 },
        messages: {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            required: ['role', 'content'],
            properties: {
              role: { type: 'string', enum: ['system', 'developer', 'user', 'assistant'] },
              content: {
                oneOf: [
                  { type: 'string' },
                  {
                    type: 'array',
                    items: {
                      type: 'object',
                      required: ['type', 'text'],
                      properties: { type: { const: 'text' }, text: { type: 'string' } },
                    },
                  },
                ],
              },
              name: { type: 'string' },
            },
          },
        },
      },
    },
    response: { 200: sse('chat.completion'), ...errors },
  }),
  completion: route('openai', 'Text completion of a prompt (OpenAI-compatible)', {
    body: {
      type: 'object',
      required: ['model', 'prompt'],
      properties: {
        ...common,
        prompt: { oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 1 }] },
        logprobs: { type: ['integer', 'null'], minimum: 0, maximum: 5 },
      },
    },
    response: { 200: sse('text_completion'), ...errors },
  }),
};
