// What this machine's CPU does to INT8 arithmetic, for the choice of 7-bit weights.
import { readFileSync } from 'node:fs';

/**
 * True on x86 CPUs without VNNI (AVX2 only): ONNX Runtime's u8×s8 GEMM adds pairs of products in int16
 * (vpmaddubsw), which saturates for large activations and 8-bit weights (seen on AMD Zen 2: errors 1.2×
 * the exact-arithmetic bound, and a transformer's scores off by 0.024 where VNNI machines stay within
 * 0.02). 7-bit weights (`reduceRange`, docs/quantization.md) cannot saturate there.
 */
export function int8SaturatesHere(): boolean {
  if (process.arch !== 'x64') return false;
  let flags = '';
  try {
    flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  } catch {
    return false;
  }
  return !/\b(avx512_vnni|avx_vnni|amx_int8)\b/.test(flags);
}
