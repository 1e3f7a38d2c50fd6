// Option parsers shared by `ferry bench` and `ferry cost`: commander calls them on the raw flag value.
import { InvalidArgumentError } from 'commander';

export function positiveNumber(name: string) {
  return (raw: string): number => {
    const n = Number(raw.replace(/_/g, ''));
    if (raw.trim() === '' || !Number.isFinite(n) || n <= 0)
      throw new InvalidArgumentError(`${name} must be a number greater than 0`);
    return n;
  };
}

export function nonNegativeNumber(name: string) {
  return (raw: string): number => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n) || n < 0)
      throw new InvalidArgumentError(`${name} must be a number ≥ 0`);
    return n;
  };
}

export function concurrencyList(raw: string): number[] {
  const parts = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const out = parts.map(Number);
  if (parts.length === 0 || out.some((n) => !Number.isInteger(n) || n < 1 || n > 4096)) {
    throw new InvalidArgumentError('give positive integers up to 4096, comma-separated, e.g. 1,2,4,8');
  }
  return out;
}
