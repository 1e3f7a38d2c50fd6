// Real speech for the audio tests: espeak-ng phrases separated by known silences, so the truth of
// where speech starts and ends comes from sample counts. Decoded with the client's own decodeWav.
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { decodeWav } from '@ferry/client';

export const RATE = 16000;

const probe = spawnSync('espeak-ng', ['--version'], { encoding: 'utf8' });
/** A skip reason when espeak-ng is missing (Debian package espeak-ng), else false. */
export const noEspeak: string | false = probe.error || probe.status !== 0 ? 'espeak-ng is not installed' : false;

/** One phrase at 16 kHz, with espeak-ng's own leading and trailing silence cut by a 10 ms energy gate. */
export function phrase(text: string): Float32Array {
  const wav = execFileSync('espeak-ng', ['-v', 'en', '-s', '160', '--stdout', text]);
  const x = decodeWav(wav.buffer.slice(wav.byteOffset, wav.byteOffset + wav.byteLength) as ArrayBuffer, RATE);
  const win = RATE / 100;
  const loud = (i: number) => Math.sqrt(x.subarray(i, i + win).reduce((a, v) => a + v * v, 0) / win) > 0.01;
  let s = 0;
  while (s + win < x.length && !loud(s)) s += win;
  let e = x.length - win;
  while (e > s && !loud(e)) e -= win;
  return x.slice(s, e + win);
}

export interface SpeechTrack {
  audio: Float32Array;
  truth: Array<{ startMs: number; endMs: number }>;
}

/** Phrases with silences before, between and after them (seconds, one more gap than phrases). */
export function speechTrack(
  texts = ['The quick brown fox jumps over the lazy dog.', 'Thank you and goodbye.'],
  gapsS = [1.0, 1.2, 1.0],
): SpeechTrack {
  const parts = texts.map(phrase);
  const gaps = gapsS.map((g) => Math.round(g * RATE));
  const audio = new Float32Array(parts.reduce((a, p) => a + p.length, 0) + gaps.reduce((a, g) => a + g, 0));
  const truth: SpeechTrack['truth'] = [];
  let at = gaps[0]!;
  parts.forEach((p, i) => {
    audio.set(p, at);
    truth.push({ startMs: (at * 1000) / RATE, endMs: ((at + p.length) * 1000) / RATE });
    at += p.length + gaps[i + 1]!;
  });
  return { audio, truth };
}

/** A 16-bit mono PCM WAV file of the samples (what a user would upload). */
export function writeWav(path: string, x: Float32Array, rate = RATE): void {
  const b = Buffer.alloc(44 + x.length * 2);
  b.write('RIFF', 0);
  b.writeUInt32LE(36 + x.length * 2, 4);
  b.write('WAVE', 8);
  b.write('fmt ', 12);
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(1, 22);
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE(rate * 2, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36);
  b.writeUInt32LE(x.length * 2, 40);
  for (let i = 0; i < x.length; i++)
    b.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(x[i]! * 32768))), 44 + i * 2);
  writeFileSync(path, b);
}
