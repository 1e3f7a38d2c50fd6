// `ferry chat MODEL`: an interactive conversation with a generative model, streamed token by token.
// Talks to a running server with --url, or starts one in this process (only that model, on a free
// loopback port) and talks to it over HTTP, so both ways exercise the same /openai/v1 streaming path.
// Ctrl-C during a reply stops it (the server cancels the generation); Ctrl-D or /exit ends the chat.
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { loadConfig } from '../../config/index.js';
import type { Command } from 'commander';
import { createServer, type FerryServer } from '../../app/create-server.js';
import { describeError, type CliContext } from '../shared.js';

const HELP = `usage: ferry chat MODEL [options]

Chat with a generative model (a model whose ferry.yaml has a generation block).

  --url URL            a running Ferry server (default: start one in this process)
  -m, --models DIR     model repository, for the in-process server (default: models)
  -c, --config FILE    ferry.config.yaml, for the in-process server
  --system TEXT        a system message to start the conversation with
  --message TEXT       send this one message, print the reply and exit (repeatable: a scripted chat)
  --max-tokens N       tokens per reply (default: the model's)
  --temperature T      0 = greedy (default: the model's)
  --top-p P            nucleus sampling mass (default: the model's)
  --seed N             same seed, same replies
  --api-key KEY        sent as a bearer token (or FERRY_API_KEY)
`;

interface Message {
  role: string;
  content: string;
}

/** Streams one reply to `out`; returns its text. Throws with the server's message on an error. */
async function streamReply(
  base: string,
  body: Record<string, unknown>,
  apiKey: string | undefined,
  signal: AbortSignal,
  out: (s: string) => void,
): Promise<{ text: string; finish: string }> {
  const res = await fetch(`${base}/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(apiKey && { authorization: `Bearer ${apiKey}` }) },
    body: JSON.stringify({ ...body, stream: true }),
    signal,
  });
  if (!res.ok || !res.body) {
    const problem = (await res.json().catch(() => ({}))) as {
      code?: string;
      detail?: string;
      error?: { message?: string };
    };
    throw Object.assign(new Error(`${res.status}: ${problem.error?.message ?? problem.detail ?? res.statusText}`), {
      code: problem.code,
    });
  }
  let text = '';
  let finish = '';
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const bytes of res.body) {
    buffer += decoder.decode(bytes as Uint8Array, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (!event.startsWith('data: ')) continue;
      const data = event.slice(6);
      if (data === '[DONE]') return { text, finish };
      const chunk = JSON.parse(data) as {
        error?: { message: string };
        choices?: { delta?: { content?: string }; finish_reason?: string | null }[];
      };
      if (chunk.error) throw new Error(chunk.error.message);
      const c = chunk.choices?.[0];
      if (c?.delta?.content) {
        text += c.delta.content;
        out(c.delta.content);
      }
      if (c?.finish_reason) finish = c.finish_reason;
    }
  }
  return { text, finish };
}

export async function runChatCli(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        models: { type: 'string', short: 'm' },
        config: { type: 'string', short: 'c' },
        system: { type: 'string' },
        message: { type: 'string', multiple: true },
        'max-tokens': { type: 'string' },
        temperature: { type: 'string' },
        'top-p': { type: 'string' },
        seed: { type: 'string' },
        'api-key': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    process.stderr.write(`ferry chat: ${(e as Error).message}\n${HELP}`);
    return 2;
  }
  const { values: o, positionals } = parsed;
  if (o.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const model = positionals[0];
  if (!model || positionals.length > 1) {
    process.stderr.write(HELP);
    return 2;
  }
  const num = (name: string, v: string | undefined, integer: boolean): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)))
      throw new Error(`--${name} must be ${integer ? 'an integer' : 'a number'}, got "${v}"`);
    return n;
  };
  let params: Record<string, unknown>;
  try {
    params = Object.fromEntries(
      Object.entries({
        max_tokens: num('max-tokens', o['max-tokens'], true),
        temperature: num('temperature', o.temperature, false),
        top_p: num('top-p', o['top-p'], false),
        seed: num('seed', o.seed, true),
      }).filter(([, v]) => v !== undefined),
    );
  } catch (e) {
    process.stderr.write(`ferry chat: ${(e as Error).message}\n`);
    return 2;
  }
  const apiKey = o['api-key'] ?? process.env.FERRY_API_KEY;

  let server: FerryServer | undefined;
  let base = o.url?.replace(/\/+$/, '');
  if (!base) {
    const name = model.split('@')[0]!;
    const cfg = loadConfig({
      ...(o.config !== undefined && { file: o.config }),
      overrides: {
        'models.dir': o.models,
        'models.only': [name],
        'server.port': 0,
        'server.host': '127.0.0.1',
        'log.level': 'warn',
      },
    });
    server = await createServer(cfg);
    base = (await server.listen()).url;
    await server.loaded;
  }
  const messages: Message[] = o.system ? [{ role: 'system', content: o.system }] : [];
  let current: AbortController | undefined;
  const onSigint = () => {
    if (current) current.abort();
    else process.exit(130);
  };
  process.on('SIGINT', onSigint);
  const turn = async (content: string): Promise<boolean> => {
    messages.push({ role: 'user', content });
    current = new AbortController();
    try {
      let r: { text: string; finish: string } | undefined;
      while (!r) {
        try {
          r = await streamReply(base!, { model, messages, ...params }, apiKey, current.signal, (s) =>
            process.stdout.write(s),
          );
        } catch (e) {
          // A conversation outgrowing the model's context forgets its oldest exchange (the system message stays).
          const first = messages.findIndex((m) => m.role !== 'system');
          if ((e as { code?: string }).code !== 'context-length-exceeded' || first < 0 || messages.length - first < 3)
            throw e;
          messages.splice(first, 2);
        }
      }
      process.stdout.write(r.finish === 'length' ? ' […]\n' : '\n');
      messages.push({ role: 'assistant', content: r.text });
      return true;
    } catch (e) {
      messages.pop();
      if (current.signal.aborted) {
        process.stdout.write(' [stopped]\n');
        return true;
      }
      process.stderr.write(`ferry chat: ${describeError(e)}\n`);
      return false;
    } finally {
      current = undefined;
    }
  };
  let code = 0;
  try {
    if (o.message?.length) {
      for (const m of o.message)
        if (!(await turn(m))) {
          code = 1;
          break;
        }
    } else {
      const interactive = process.stdin.isTTY === true;
      if (interactive)
        process.stdout.write(`chatting with ${model} at ${base}; Ctrl-C stops a reply, Ctrl-D or /exit ends\n`);
      const rl = createInterface({
        input: process.stdin,
        output: process.stdout,
        terminal: interactive,
        prompt: interactive ? '> ' : '',
      });
      rl.prompt();
      for await (const line of rl) {
        const text = line.trim();
        if (text === '/exit' || text === '/quit') break;
        if (text) await turn(text);
        rl.prompt();
      }
      rl.close();
    }
  } finally {
    process.off('SIGINT', onSigint);
    await server?.close();
  }
  return code;
}

export function registerChatCommand(program: Command, ctx: CliContext): void {
  // The options are parsed by runChatCli, which prints its own usage (ferry chat --help).
  program
    .command('chat')
    .description(
      'chat with a generative model, streamed token by token: ferry chat MODEL [--url URL] [--message TEXT] (see ferry chat --help)',
    )
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    .action(async (args: string[]) => {
      ctx.setExitCode(await runChatCli(args));
    });
}
