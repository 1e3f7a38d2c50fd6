// Reads and checks an OpenAI request body (chat or completions). Every refusal names the field by JSON
// pointer; OpenAI's own parameter names are kept on the wire and converted to camelCase here, at the edge.
import { FerryError } from '../errors.js';
import type { GenerationConfig } from '../config/schemas/generation.js';
import type { ChatMessage } from './text-codec.js';

export interface OpenAiRequest {
  model: string;
  prompt: { messages: ChatMessage[] } | { text: string };
  /** Undefined when the client left it out (then the model's or the server's default applies, clamped to the context).
   */
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  stop: string[];
  seed?: number;
  stream: boolean;
  includeUsage: boolean;
  /** Choices to generate from the one prompt (OpenAI's `n`). */
  n: number;
  /**
   * Report each token's log-probability with this many alternatives: chat's `logprobs: true` with
   * `top_logprobs`, or the completions API's integer `logprobs`. Undefined: no log-probabilities.
   */
  topLogprobs?: number;
}

interface Issue {
  pointer: string;
  reason: string;
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant']);
const COMMON = [
  'model',
  'max_tokens',
  'temperature',
  'top_p',
  'stop',
  'seed',
  'n',
  'stream',
  'stream_options',
  'user',
  'presence_penalty',
  'frequency_penalty',
  'logprobs',
  'logit_bias',
];
const CHAT_ONLY = [
  'messages',
  'max_completion_tokens',
  'top_logprobs',
  'response_format',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'functions',
  'function_call',
  'metadata',
  'store',
];
const COMPLETION_ONLY = ['prompt', 'echo', 'suffix', 'best_of'];

const MAX_STOPS = 4;
/** OpenAI's own limits: 20 alternatives on /chat/completions, 5 on the legacy /completions. */
const MAX_TOP_LOGPROBS = 20;
const MAX_COMPLETION_LOGPROBS = 5;
const MAX_STOP_CHARS = 200;

export function invalidRequest(issues: Issue[]): FerryError {
  const first = issues[0]!;
  return new FerryError('invalid-request', {
    detail: `${first.pointer}: ${first.reason}${issues.length > 1 ? ` (${issues.length - 1} more in errors)` : ''}`,
    extra: { errors: issues },
  });
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const describe = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

export function parseOpenAiRequest(body: unknown, kind: 'chat' | 'completion', cfg: GenerationConfig): OpenAiRequest {
  // Other content types reach here unparsed (the server also takes raw image bodies).
  if (typeof body === 'string' || Buffer.isBuffer(body))
    throw new FerryError('unsupported-media-type', { detail: 'send the request as application/json' });
  if (!isObject(body)) throw invalidRequest([{ pointer: '', reason: `expected a JSON object, got ${describe(body)}` }]);
  const issues: Issue[] = [];
  const bad = (field: string, reason: string) => issues.push({ pointer: `/${field}`, reason });
  const allowed = new Set([...COMMON, ...(kind === 'chat' ? CHAT_ONLY : COMPLETION_ONLY)]);
  for (const k of Object.keys(body))
    if (!allowed.has(k))
      bad(
        k.slice(0, 100),
        `unknown parameter "${k.slice(0, 100)}" for ${kind === 'chat' ? '/chat/completions' : '/completions'}`,
      );
  const present = (k: string) => body[k] !== undefined && body[k] !== null;

  let model = '';
  if (typeof body.model !== 'string' || body.model.length === 0)
    bad('model', 'required: the model name, e.g. "ham-chat" or "ham-chat@1"');
  else if (body.model.length > 300) bad('model', 'longer than 300 characters');
  else model = body.model;

  let prompt: OpenAiRequest['prompt'] = { text: '' };
  let promptChars = 0;
  if (kind === 'chat') {
    const messages: ChatMessage[] = [];
    if (!Array.isArray(body.messages) || body.messages.length === 0)
      bad('messages', 'required: a non-empty array of {role, content}');
    else if (body.messages.length > cfg.maxMessages)
      bad('messages', `${body.messages.length} messages; at most ${cfg.maxMessages} (generation.maxMessages)`);
    else {
      body.messages.forEach((m: unknown, i: number) => {
        const at = `messages/${i}`;
        if (!isObject(m)) {
          bad(at, `expected an object, got ${describe(m)}`);
          return;
        }
        if (typeof m.role !== 'string' || !ROLES.has(m.role)) {
          bad(`${at}/role`, `must be one of ${[...ROLES].join(', ')}`);
          return;
        }
        let content: string | undefined;
        if (typeof m.content === 'string') content = m.content;
        else if (Array.isArray(m.content)) {
          const parts = m.content.map((p: unknown, j: number) => {
            if (isObject(p) && p.type === 'text' && typeof p.text === 'string') return p.text;
            bad(`${at}/content/${j}`, 'only text parts ({"type": "text", "text": "..."}) are supported');
            return '';
          });
          content = parts.join('');
        } else bad(`${at}/content`, `expected a string or an array of text parts, got ${describe(m.content)}`);
        for (const k of Object.keys(m))
          if (!['role', 'content', 'name'].includes(k))
            bad(
              `${at}/${k.slice(0, 100)}`,
              `unsupported message member "${k.slice(0, 100)}" (tool calls are not supported)`,
            );
        if (content !== undefined) {
          promptChars += content.length;
          messages.push({ role: m.role, content });
        }
      });
    }
    prompt = { messages };
  } else {
    let text: string | undefined;
    if (typeof body.prompt === 'string') text = body.prompt;
    else if (Array.isArray(body.prompt) && body.prompt.length === 1 && typeof body.prompt[0] === 'string')
      text = body.prompt[0];
    else
      bad(
        'prompt',
        Array.isArray(body.prompt) && body.prompt.length > 1
          ? 'one prompt per request (n=1, no batches of prompts)'
          : 'required: a string',
      );
    if (text !== undefined) {
      promptChars = text.length;
      prompt = { text };
    }
    if (present('echo') && body.echo !== false) bad('echo', 'only false is supported');
    if (present('suffix')) bad('suffix', 'not supported');
    if (present('best_of') && body.best_of !== 1) bad('best_of', 'only 1 is supported');
  }
  if (promptChars > cfg.maxPromptChars)
    bad(
      kind === 'chat' ? 'messages' : 'prompt',
      `${promptChars} characters; at most ${cfg.maxPromptChars} (generation.maxPromptChars)`,
    );

  const integer = (k: string, min: number, max: number): number | undefined => {
    if (!present(k)) return undefined;
    const v = body[k];
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      bad(k, `expected an integer, got ${describe(v)}`);
      return undefined;
    }
    if (v < min || v > max) {
      bad(k, `must be between ${min} and ${max}`);
      return undefined;
    }
    return v;
  };
  const number = (k: string, min: number, max: number, openMin = false): number | undefined => {
    if (!present(k)) return undefined;
    const v = body[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      bad(k, `expected a number, got ${describe(v)}`);
      return undefined;
    }
    if (v < min || v > max || (openMin && v === min)) {
      bad(k, `must be ${openMin ? 'greater than' : 'at least'} ${min} and at most ${max}`);
      return undefined;
    }
    return v;
  };
  const boolean = (k: string): boolean | undefined => {
    if (!present(k)) return undefined;
    if (typeof body[k] !== 'boolean') {
      bad(k, `expected a boolean, got ${describe(body[k])}`);
      return undefined;
    }
    return body[k] as boolean;
  };

  const maxTokens = integer('max_tokens', 1, cfg.maxTokensLimit);
  const maxCompletion = kind === 'chat' ? integer('max_completion_tokens', 1, cfg.maxTokensLimit) : undefined;
  if (maxTokens !== undefined && maxCompletion !== undefined)
    bad('max_completion_tokens', 'give max_tokens or max_completion_tokens, not both');
  const temperature = number('temperature', 0, 2);
  const topP = number('top_p', 0, 1, true);
  const seed = integer('seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const n = integer('n', 1, cfg.maxChoices) ?? 1;
  const stream = boolean('stream') ?? false;
  let includeUsage = false;
  if (present('stream_options')) {
    const so = body.stream_options;
    if (!isObject(so)) bad('stream_options', `expected an object, got ${describe(so)}`);
    else {
      if (!stream) bad('stream_options', 'only allowed with stream: true');
      for (const k of Object.keys(so))
        if (k !== 'include_usage') bad(`stream_options/${k.slice(0, 100)}`, 'unknown member');
      if (so.include_usage !== undefined && typeof so.include_usage !== 'boolean')
        bad('stream_options/include_usage', 'expected a boolean');
      includeUsage = so.include_usage === true;
    }
  }
  const stop: string[] = [];
  if (present('stop')) {
    const s = body.stop;
    const list = typeof s === 'string' ? [s] : Array.isArray(s) ? s : undefined;
    if (!list) bad('stop', `expected a string or an array of strings, got ${describe(s)}`);
    else if (list.length > MAX_STOPS) bad('stop', `at most ${MAX_STOPS} stop sequences`);
    else
      list.forEach((x: unknown, i: number) => {
        const at = typeof s === 'string' ? 'stop' : `stop/${i}`;
        if (typeof x !== 'string' || x.length === 0) bad(at, 'expected a non-empty string');
        else if (x.length > MAX_STOP_CHARS) bad(at, `longer than ${MAX_STOP_CHARS} characters`);
        else stop.push(x);
      });
  }
  for (const k of ['presence_penalty', 'frequency_penalty']) {
    if (present(k) && body[k] !== 0) bad(k, 'not supported: only 0');
  }
  let topLogprobs: number | undefined;
  if (kind === 'chat') {
    const lp = boolean('logprobs');
    const top = integer('top_logprobs', 0, MAX_TOP_LOGPROBS);
    if (top !== undefined && lp !== true) bad('top_logprobs', 'only allowed with logprobs: true');
    if (lp) topLogprobs = top ?? 0;
  } else {
    // The completions API's `logprobs` is the number of alternatives (0 to 5), null or absent for none.
    topLogprobs = integer('logprobs', 0, MAX_COMPLETION_LOGPROBS);
  }
  if (present('logit_bias') && !(isObject(body.logit_bias) && Object.keys(body.logit_bias).length === 0))
    bad('logit_bias', 'not supported');
  if (kind === 'chat') {
    for (const k of ['tools', 'tool_choice', 'functions', 'function_call', 'parallel_tool_calls'])
      if (present(k)) bad(k, 'tool calling is not supported');
    if (present('response_format') && !(isObject(body.response_format) && body.response_format.type === 'text'))
      bad('response_format', 'only {"type": "text"} is supported');
  }
  if (present('user') && typeof body.user !== 'string') bad('user', 'expected a string');
  if (issues.length) throw invalidRequest(issues);
  const mt = maxTokens ?? maxCompletion;
  return {
    model,
    prompt,
    stop,
    stream,
    includeUsage,
    n,
    ...(topLogprobs !== undefined && { topLogprobs }),
    ...(mt !== undefined && { maxTokens: mt }),
    ...(temperature !== undefined && { temperature }),
    ...(topP !== undefined && { topP }),
    ...(seed !== undefined && { seed: ((seed % 2 ** 32) + 2 ** 32) % 2 ** 32 }),
  };
}
