// `ferry stream MODEL --wav FILE`: streams a WAV file to a model's WebSocket stream and prints the
// events. Without --url it starts the model in this process and connects to it over a real socket,
// so the command exercises the same path a browser does.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { resample } from '@ferry/core';
import { loadConfig } from '../../config/index.js';
import { createServer, type FerryServer } from '../../app/create-server.js';
import { decodeWav } from '../../streaming/wav.js';
import type { Command } from 'commander';
import type { CliContext } from '../shared.js';

const USAGE = `usage: ferry stream MODEL --wav FILE [--url http://host:port] [--realtime] [--probabilities MS]
                    [--chunk-ms 100] [--json] [-m models] [-c ferry.config.yaml]
  Streams a WAV file (any rate and channel count; resampled to the model's rate, mixed to mono) to
  GET /v1/models/MODEL/stream and prints speech segments as they are detected.
  --realtime        send the audio at its own pace (default: as fast as the server takes it)
  --probabilities   also print the speech probability every MS milliseconds of audio
  --json            print every event as one JSON line`;

interface Event {
  type: string;
  [k: string]: unknown;
}

// eslint-disable-next-line max-lines-per-function -- parse, connect, stream, report
export async function runStreamCli(
  args: string[],
  out: (s: string) => void = (s) => process.stdout.write(s),
  err: (s: string) => void = (s) => process.stderr.write(s),
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        wav: { type: 'string' },
        url: { type: 'string' },
        realtime: { type: 'boolean' },
        probabilities: { type: 'string' },
        'chunk-ms': { type: 'string', default: '100' },
        json: { type: 'boolean' },
        models: { type: 'string', short: 'm' },
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    err(`ferry stream: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values: o, positionals } = parsed;
  if (o.help) {
    out(`${USAGE}\n`);
    return 0;
  }
  const model = positionals[0];
  const chunkMs = Number(o['chunk-ms']);
  if (!model || !o.wav || !(chunkMs > 0)) {
    err(`ferry stream: a MODEL, --wav FILE and a positive --chunk-ms are needed\n${USAGE}\n`);
    return 2;
  }
  let wav;
  try {
    wav = decodeWav(new Uint8Array(readFileSync(o.wav)));
  } catch (e) {
    err(`ferry stream: ${o.wav}: ${(e as Error).message}\n`);
    return 2;
  }

  let server: FerryServer | undefined;
  let base = o.url?.replace(/\/$/, '');
  try {
    if (!base) {
      const cfg = loadConfig({
        ...(o.config !== undefined && { file: o.config }),
        overrides: {
          ...(o.models !== undefined && { 'models.dir': o.models }),
          'models.only': [model.split('@')[0]!],
          'server.host': '127.0.0.1',
          'server.port': 0,
          'log.level': 'warn',
        },
      });
      server = await createServer(cfg);
      await server.loaded;
      base = (await server.listen()).url;
    }
    const [name, version] = model.split('@');
    const path = version
      ? `/v1/models/${encodeURIComponent(name!)}/versions/${encodeURIComponent(version)}/stream`
      : `/v1/models/${encodeURIComponent(name!)}/stream`;
    const query = new URLSearchParams({
      format: 'f32',
      ...(o.probabilities && { probabilityIntervalMs: o.probabilities }),
    });
    return await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${base!.replace(/^http/, 'ws')}${path}?${query}`);
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d;
        });
        res.on('end', () => {
          err(`ferry stream: HTTP ${res.statusCode}: ${body}\n`);
          resolve(1);
        });
      });
      ws.on('error', (e) => {
        err(`ferry stream: ${e.message}\n`);
        resolve(1);
      });
      ws.on('close', (code, reason) => {
        if (code !== 1000) err(`ferry stream: closed ${code} ${String(reason)}\n`);
        resolve(code === 1000 ? 0 : 1);
      });
      ws.on('message', (data) => {
        const e = JSON.parse(String(data)) as Event;
        if (o.json) {
          out(`${JSON.stringify(e)}\n`);
        } else if (e.type === 'ready')
          out(
            `${e.model}@${e.version}: ${(wav.samples.length / wav.sampleRate).toFixed(3)} s of audio (${wav.sampleRate} Hz, ${wav.channels} ch) → ${e.sampleRate} Hz, frames of ${e.frameSamples}\n`,
          );
        else if (e.type === 'speech_start') out(`speech start ${sec(e.startMs)}\n`);
        else if (e.type === 'speech_end')
          out(
            `speech       ${sec(e.startMs)} → ${sec(e.endMs)}  (${sec((e.endMs as number) - (e.startMs as number))})\n`,
          );
        else if (e.type === 'probability')
          out(
            `  ${sec(e.timeMs)}  p=${(e.probability as number).toFixed(3)}  max=${(e.maxProbability as number).toFixed(3)}\n`,
          );
        else if (e.type === 'done') out(`done: ${e.segments} speech segment(s) in ${sec(e.durationMs)}\n`);
        else if (e.type === 'error') err(`ferry stream: ${e.code}: ${e.detail}\n`);
        if (e.type === 'ready')
          void send(
            ws,
            wav.sampleRate === e.sampleRate
              ? wav.samples
              : resample(wav.samples, wav.sampleRate, e.sampleRate as number),
            e.sampleRate as number,
            chunkMs,
            o.realtime ?? false,
          );
      });
    });
  } finally {
    await server?.close();
  }
}

const sec = (ms: unknown): string => `${((ms as number) / 1000).toFixed(3)} s`;

async function send(
  ws: WebSocket,
  samples: Float32Array,
  rate: number,
  chunkMs: number,
  realtime: boolean,
): Promise<void> {
  const step = Math.max(1, Math.round((rate * chunkMs) / 1000));
  const t0 = performance.now();
  for (let at = 0; at < samples.length && ws.readyState === WebSocket.OPEN; at += step) {
    const chunk = samples.slice(at, at + step);
    ws.send(new Uint8Array(chunk.buffer));
    if (realtime) {
      const due = t0 + ((at + step) * 1000) / rate;
      await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
    } else if (ws.bufferedAmount > 1 << 20) {
      // Do not queue the whole file in memory when the server reads slower than the disk.
      while (ws.bufferedAmount > 1 << 18 && ws.readyState === WebSocket.OPEN)
        await new Promise((r) => setTimeout(r, 5));
    }
  }
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'end' }));
}

export function registerStreamCommand(program: Command, ctx: CliContext): void {
  // The options are parsed by runStreamCli, which prints its own usage (ferry stream --help).
  program
    .command('stream')
    .description(
      'stream a WAV file to a streaming model and print speech segments: ferry stream silero-vad --wav FILE [--url URL] [--realtime] (see ferry stream --help)',
    )
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    .action(async (args: string[]) => {
      ctx.setExitCode(await runStreamCli(args, ctx.io.stdout, ctx.io.stderr));
    });
}
