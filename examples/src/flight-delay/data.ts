// The flights-20k sample from vega-datasets (US domestic flights, January-March 2001), turned into
// the flight-delay model's request instances and labels.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** One request instance of the flight-delay model: exactly the features of its ferry.yaml. */
export interface FlightInstance {
  [k: string]: unknown;
  month: number;
  /** 0 = Sunday. */
  dayOfWeek: number;
  /** Departure time as a fractional hour, 0 ≤ hour < 24. */
  hour: number;
  /** Miles. */
  distance: number;
  origin: string;
  destination: string;
}

export interface Flight {
  instance: FlightInstance;
  /** Delay in minutes (negative when early). */
  delayMinutes: number;
}

interface RawFlight {
  date: string;
  delay: number;
  distance: number;
  origin: string;
  destination: string;
}

/** Delayed means more than 15 minutes late, the US DOT's on-time threshold. */
export const DELAY_THRESHOLD_MINUTES = 15;

/**
 * Path of flights-20k.json. vega-datasets exports only its JS entry (not package.json), so resolve that
 * and walk up to the package folder.
 */
export function flightsFile(): string {
  let dir = dirname(createRequire(import.meta.url).resolve('vega-datasets'));
  for (;;) {
    const candidate = join(dir, 'data', 'flights-20k.json');
    try {
      readFileSync(join(dir, 'package.json'));
      return candidate;
    } catch {
      const up = dirname(dir);
      if (up === dir) throw new Error('cannot find the vega-datasets package folder');
      dir = up;
    }
  }
}

const DATE = /^(\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2})$/;

export function parseFlight(raw: RawFlight): Flight {
  const m = DATE.exec(raw.date);
  if (!m) throw new Error(`unexpected date "${raw.date}"`);
  const [y, mo, d, h, mi] = m.slice(1).map(Number) as [number, number, number, number, number];
  return {
    instance: {
      month: mo,
      dayOfWeek: new Date(Date.UTC(y, mo - 1, d)).getUTCDay(),
      hour: h + mi / 60,
      distance: raw.distance,
      origin: raw.origin,
      destination: raw.destination,
    },
    delayMinutes: raw.delay,
  };
}

export function loadFlights(file = flightsFile()): Flight[] {
  return (JSON.parse(readFileSync(file, 'utf8')) as RawFlight[]).map(parseFlight);
}
