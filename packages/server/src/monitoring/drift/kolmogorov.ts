// The distribution of the one-sample two-sided Kolmogorov-Smirnov statistic D_n for finite n.
// The two-sample KS test needs it in its asymptotic mode: SciPy's `ks_2samp` (and so Evidently)
// evaluates Pr(D ≥ d) there as the one-sample survival function at n = round(n1·n2/(n1+n2)),
// `kstwo.sf(d, n)`, rather than with Kolmogorov's limiting law. This module computes the same
// quantity, choosing a method per region as Simard & L'Ecuyer recommend (which is also SciPy's choice):
//
// - Ruben & Gambino (1982): closed forms for n·d ≤ 1 and n·d ≥ n − 1;
// - the one-sided Smirnov tail, doubled: exact for d ≥ 0.5, and a very close upper bound in the far
//   tail (Miller 1956) — the intersection of the two one-sided events is negligible there;
// - Durbin's (1968) matrix method as Marsaglia, Tsang & Wang (2003) evaluate it: exact, for small
//   n·d² (its cost grows as (n·d)³ log n). For n ≤ 140 SciPy uses Pomeranz's exact recursion in part of
//   this region; both are exact, so the results agree to rounding;
// - the Pelz & Good (1976) asymptotic series (four terms in 1/√n) elsewhere.
//
// References: R. Simard, P. L'Ecuyer, "Computing the Two-Sided Kolmogorov-Smirnov Distribution",
// J. Stat. Software 39(11), 2011. G. Marsaglia, W. W. Tsang, J. Wang, "Evaluating Kolmogorov's
// Distribution", J. Stat. Software 8(18), 2003. W. Pelz, I. J. Good, "Approximating the Lower Tail-areas
// of the Kolmogorov-Smirnov One-sample Statistic", JRSS B 38(2), 1976. Z. W. Birnbaum, F. H. Tingey,
// "One-sided confidence contours for probability distribution functions", Ann. Math. Stat. 22, 1951.
import gammaln from '@stdlib/math-base-special-gammaln';

const clip = (p: number): number => (p < 0 ? 0 : p > 1 ? 1 : p);

/** ln(n! / n^n). */
function logFactorialOverPower(n: number): number {
  return gammaln(n + 1) - n * Math.log(n);
}

/**
 * Pr(D_n⁺ ≥ d), the upper tail of the one-sided statistic, exactly, by the Birnbaum–Tingey sum
 * d · Σ_{j=0}^{⌊n(1−d)⌋} C(n,j) (1 − d − j/n)^{n−j} (d + j/n)^{j−1}.
 * Every term is positive, so summing them in log space (scaled by the largest) loses nothing to cancellation.
 */
export function smirnovSf(n: number, d: number): number {
  if (!(d > 0)) return 1;
  if (d >= 1) return 0;
  const last = Math.floor(n * (1 - d));
  const logs: number[] = [];
  const lnN1 = gammaln(n + 1);
  for (let j = 0; j <= last; j++) {
    const a = 1 - d - j / n;
    const b = d + j / n;
    if (a < 0 || (a === 0 && n - j > 0)) continue;
    const logTerm =
      lnN1 - gammaln(j + 1) - gammaln(n - j + 1) + (n - j === 0 ? 0 : (n - j) * Math.log(a)) + (j - 1) * Math.log(b);
    logs.push(logTerm);
  }
  if (logs.length === 0) return 0;
  let max = -Infinity;
  for (const l of logs) if (l > max) max = l;
  let sum = 0;
  for (const l of logs) sum += Math.exp(l - max);
  return clip(d * Math.exp(max) * sum);
}

/** Square matrix of order m in row-major order, times 2^scale (the scale keeps entries in range). */
interface ScaledMatrix {
  a: Float64Array;
  scale: number;
}

function multiply(x: ScaledMatrix, y: ScaledMatrix, m: number): ScaledMatrix {
  const out = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let k = 0; k < m; k++) {
      const xik = x.a[i * m + k]!;
      if (xik === 0) continue;
      const row = k * m;
      const base = i * m;
      for (let j = 0; j < m; j++) out[base + j]! += xik * y.a[row + j]!;
    }
  }
  let max = 0;
  for (let i = 0; i < out.length; i++) {
    const v = Math.abs(out[i]!);
    if (v > max) max = v;
  }
  let scale = x.scale + y.scale;
  if (max > 0 && (max > 1e100 || max < 1e-100)) {
    const e = Math.round(Math.log2(max));
    const f = 2 ** -e;
    for (let i = 0; i < out.length; i++) out[i]! *= f;
    scale += e;
  }
  return { a: out, scale };
}

/**
 * Pr(D_n < d) by Durbin's matrix formula: n!/n^n times the central element of Hⁿ, with H the
 * (2k−1)-square matrix of Marsaglia, Tsang & Wang (k = ⌊n·d⌋ + 1, h = k − n·d).
 */
export function durbinCdf(n: number, d: number): number {
  const k = Math.floor(n * d) + 1;
  const m = 2 * k - 1;
  const h = k - n * d;
  const H = new Float64Array(m * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) if (i - j + 1 >= 0) H[i * m + j] = 1;
  for (let i = 0; i < m; i++) {
    H[i * m]! -= h ** (i + 1);
    H[(m - 1) * m + i]! -= h ** (m - i);
  }
  if (2 * h - 1 > 0) H[(m - 1) * m]! += (2 * h - 1) ** m;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      const q = i - j + 1;
      if (q > 0) H[i * m + j]! /= Math.exp(gammaln(q + 1));
    }
  }
  // Hⁿ by repeated squaring.
  let result: ScaledMatrix | null = null;
  let power: ScaledMatrix = { a: H, scale: 0 };
  for (let e = n; e > 0; e = Math.floor(e / 2)) {
    if (e % 2 === 1) result = result ? multiply(result, power, m) : power;
    if (e > 1) power = multiply(power, power, m);
  }
  const centre = result!.a[(k - 1) * m + (k - 1)]!;
  if (centre <= 0) return 0;
  return clip(Math.exp(Math.log(centre) + result!.scale * Math.LN2 + logFactorialOverPower(n)));
}

/** Pr(D_n ≤ x) by the Pelz–Good expansion K0 + K1/√n + K2/n + K3/n^{3/2}, with z = x√n. */
export function pelzGoodCdf(n: number, x: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const z = Math.sqrt(n) * x;
  const z2 = z * z;
  const z4 = z2 * z2;
  const z6 = z4 * z2;
  const pi2 = Math.PI ** 2;
  const pi4 = pi2 * pi2;
  const pi6 = pi4 * pi2;
  const logQ = -pi2 / (8 * z2);
  if (logQ < -708) return 0;
  const sqrt2pi = Math.sqrt(2 * Math.PI);
  const terms = Math.ceil((16 * z) / Math.PI);
  // Sums over odd m = 2k − 1 of a polynomial in m² times exp(−π² m² / (8 z²)).
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  for (let k = 1; k <= terms; k++) {
    const mm = (2 * k - 1) ** 2;
    const w = Math.exp(logQ * mm);
    s0 += w;
    s1 += ((pi2 * mm) / 4 - z2) * w;
    s2 += (6 * z6 + 2 * z4 + ((2 * z4 - 5 * z2) * pi2 * mm) / 4 + (pi4 * (1 - 2 * z2) * mm * mm) / 16) * w;
    s3 +=
      (-30 * z6 -
        90 * z6 * z2 +
        (pi2 * (135 * z4 - 96 * z6) * mm) / 4 +
        (pi4 * (212 * z4 - 60 * z2) * mm * mm) / 16 +
        (pi6 * (5 - 30 * z2) * mm * mm * mm) / 64) *
      w;
  }
  // Sums over all k ≥ 1 of k² exp(−π² k² / (2 z²)), and the same weighted by (3z² − π²k²).
  let t2 = 0;
  let t3 = 0;
  for (let k = 1; k <= terms; k++) {
    const w = k * k * Math.exp((-pi2 * k * k) / (2 * z2));
    t2 += w;
    t3 += (3 * z2 - pi2 * k * k) * w;
  }
  const K0 = (sqrt2pi / z) * s0;
  const K1 = (sqrt2pi / (6 * z4)) * s1;
  const K2 = (sqrt2pi / (72 * z6 * z)) * s2 - ((pi2 * sqrt2pi) / (36 * z2 * z)) * t2;
  const K3 = (sqrt2pi / (6480 * z6 * z4)) * s3 + ((pi2 * sqrt2pi) / (216 * z6)) * t3;
  const rn = Math.sqrt(n);
  return clip(K0 + K1 / rn + K2 / n + K3 / (n * rn));
}

/**
 * Pr(D_n ≥ d) for the one-sample two-sided KS statistic with sample size n (SciPy's `kstwo.sf(d, n)`).
 * @example kolmogorovSf(10, 0.40925) // ≈ 0.05 (Massey's 5% critical value for n = 10)
 */
export function kolmogorovSf(n: number, d: number): number {
  if (!Number.isInteger(n) || n <= 0 || Number.isNaN(d)) return Number.NaN;
  if (d >= 1) return 0;
  if (d <= 0) return 1;
  const t = n * d;
  if (t <= 1) {
    if (t <= 0.5) return 1;
    return clip(1 - Math.exp(logFactorialOverPower(n) + n * Math.log(2 * t - 1)));
  }
  if (t >= n - 1) return clip(2 * (1 - d) ** n);
  if (d >= 0.5) return clip(2 * smirnovSf(n, d));
  const nd2 = t * d;
  if (n <= 140) {
    if (nd2 <= 4) return clip(1 - durbinCdf(n, d));
    return clip(2 * smirnovSf(n, d));
  }
  if (nd2 >= 370) return 0;
  if (nd2 >= 2.2) return clip(2 * smirnovSf(n, d));
  if (n <= 100000 && n * d ** 1.5 <= 1.4) return clip(1 - durbinCdf(n, d));
  return clip(1 - pelzGoodCdf(n, d));
}
