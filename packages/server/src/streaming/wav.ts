// Reads the samples of a RIFF/WAVE file as mono float32: 8/16/24/32-bit PCM or 32-bit float, any
// number of channels (averaged). Enough for `ferry stream --wav`; streamed WAVs whose data size is
// 0 or 0xFFFFFFFF (as `espeak-ng --stdout` and `sox -t wav -` write) are read to the end.

export interface WavAudio {
  sampleRate: number;
  channels: number;
  samples: Float32Array;
}

export function decodeWav(bytes: Uint8Array): WavAudio {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number): string => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (bytes.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new Error('not a RIFF/WAVE file');
  let fmt: { format: number; channels: number; sampleRate: number; bits: number } | undefined;
  for (let at = 12; at + 8 <= bytes.length;) {
    const id = tag(at);
    let size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'data' && (size === 0 || size === 0xffffffff || body + size > bytes.length)) size = bytes.length - body;
    if (id === 'fmt ') {
      let format = view.getUint16(body, true);
      // WAVE_FORMAT_EXTENSIBLE: the real format is the first two bytes of the sub-format GUID.
      if (format === 0xfffe && size >= 26) format = view.getUint16(body + 24, true);
      fmt = {
        format,
        channels: view.getUint16(body + 2, true),
        sampleRate: view.getUint32(body + 4, true),
        bits: view.getUint16(body + 14, true),
      };
    } else if (id === 'data') {
      if (!fmt) throw new Error('WAV data chunk before its fmt chunk');
      return { sampleRate: fmt.sampleRate, channels: fmt.channels, samples: toMono(view, body, size, fmt) };
    }
    at = body + size + (size % 2);
  }
  throw new Error('WAV file has no data chunk');
}

function toMono(
  view: DataView,
  start: number,
  size: number,
  f: { format: number; channels: number; bits: number },
): Float32Array {
  const width = f.bits / 8;
  const read: ((at: number) => number) | undefined =
    f.format === 3 && f.bits === 32
      ? (at) => view.getFloat32(at, true)
      : f.format !== 1
        ? undefined
        : f.bits === 16
          ? (at) => view.getInt16(at, true) / 32768
          : f.bits === 8
            ? (at) => (view.getUint8(at) - 128) / 128
            : f.bits === 24
              ? (at) => (view.getUint8(at) | (view.getUint8(at + 1) << 8) | (view.getInt8(at + 2) << 16)) / 8388608
              : f.bits === 32
                ? (at) => view.getInt32(at, true) / 2147483648
                : undefined;
  if (!read || f.channels < 1)
    throw new Error(
      `unsupported WAV encoding (format ${f.format}, ${f.bits} bits, ${f.channels} channels): use PCM 8/16/24/32-bit or float32`,
    );
  const frames = Math.floor(size / (width * f.channels));
  const out = new Float32Array(frames);
  for (let i = 0; i < frames; i++) {
    let s = 0;
    for (let ch = 0; ch < f.channels; ch++) s += read(start + (i * f.channels + ch) * width);
    out[i] = Math.max(-1, Math.min(1, s / f.channels));
  }
  return out;
}
