// The price table `ferry cost` reads: a YAML file users edit, validated with the path of any bad key.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse } from 'yaml';

const Money = Type.Number({ minimum: 0 });

export const PricesSchema = Type.Object(
  {
    takenOn: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' }),
    /** True only once someone checked every price against the provider's pages on `takenOn`; absent means false. */
    verified: Type.Optional(Type.Boolean()),
    currency: Type.String({ minLength: 1 }),
    source: Type.String(),
    hoursPerMonth: Type.Number({ exclusiveMinimum: 0, maximum: 744 }),
    instances: Type.Array(
      Type.Object(
        {
          name: Type.String({ minLength: 1 }),
          vcpus: Type.Integer({ minimum: 1 }),
          memoryGiB: Type.Number({ exclusiveMinimum: 0 }),
          hourly: Money,
          spotHourly: Money,
        },
        { additionalProperties: false },
      ),
      { minItems: 1 },
    ),
    serverless: Type.Array(
      Type.Object(
        {
          name: Type.String({ minLength: 1 }),
          perMillionRequests: Money,
          perGbSecond: Money,
          memoryGiB: Type.Number({ exclusiveMinimum: 0 }),
          keepWarmMonthly: Money,
        },
        { additionalProperties: false },
      ),
    ),
    services: Type.Object({ redisMonthly: Money, postgresMonthly: Money }, { additionalProperties: false }),
    egressPerGb: Money,
    cdnEgressPerGb: Money,
    storagePerGbMonth: Money,
    /**
     * Hosted LLM prices per upstream model, USD per million tokens (the LLM gateway reads them through
     * `llm.pricesFile`; a provider's own `prices` in the server config win).
     */
    llm: Type.Optional(
      Type.Array(
        Type.Object(
          {
            model: Type.String({ minLength: 1 }),
            inputPerMTok: Money,
            cachedInputPerMTok: Money,
            outputPerMTok: Money,
          },
          { additionalProperties: false },
        ),
      ),
    ),
    assumptions: Type.Object(
      {
        peakFactor: Type.Number({ minimum: 1 }),
        targetUtilization: Type.Number({ exclusiveMinimum: 0, maximum: 1 }),
        minReplicas: Type.Integer({ minimum: 1 }),
        cacheHitCostRatio: Type.Number({ minimum: 0, maximum: 1 }),
        coreSpeedUncertainty: Type.Number({ minimum: 0, exclusiveMaximum: 1 }),
        batchOverheadMinutes: Type.Number({ minimum: 0 }),
        requestsPerUserPerDay: Type.Number({ exclusiveMinimum: 0 }),
        downloadsPerUserPerMonth: Type.Number({ minimum: 0 }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export type Prices = Static<typeof PricesSchema>;

/** The price table shipped with Ferry (packages/tools/prices.yaml). */
export const DEFAULT_PRICES_PATH = fileURLToPath(new URL('../../prices.yaml', import.meta.url));

export class PricesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PricesError';
  }
}

export function parsePrices(text: string, where: string): Prices {
  let data: unknown;
  try {
    data = parse(text);
  } catch (e) {
    throw new PricesError(`${where}: invalid YAML: ${(e as Error).message}`);
  }
  const errors = [...Value.Errors(PricesSchema, data)];
  if (errors.length)
    throw new PricesError(
      `${where}: ${errors
        .slice(0, 5)
        .map((e) => `${e.path || '/'}: ${e.message}`)
        .join('; ')}`,
    );
  return data as Prices;
}

export function loadPrices(path = DEFAULT_PRICES_PATH): Prices {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new PricesError(`cannot read prices file ${path}: ${(e as Error).message}`);
  }
  return parsePrices(text, path);
}

/** A price table older than this is flagged as stale. */
export const STALE_PRICES_DAYS = 365;

/**
 * What a reader of a cost estimate must be told about the price table itself: prices not checked
 * against the provider (`verified` not true), or read more than a year before `now`.
 */
export function priceTableWarnings(p: Prices, now: Date = new Date()): string[] {
  const out: string[] = [];
  if (p.verified !== true) {
    out.push(
      `prices of ${p.takenOn} are unverified example prices (${p.source}); check them against your provider's price pages before deciding (ferry cost --write-prices FILE, edit, set verified: true, pass --prices FILE)`,
    );
  }
  const ageDays = Math.floor((now.getTime() - Date.parse(`${p.takenOn}T00:00:00Z`)) / 86_400_000);
  if (ageDays > STALE_PRICES_DAYS)
    out.push(`prices were taken on ${p.takenOn}, ${ageDays} days ago (more than a year): prices change; re-read them`);
  return out;
}
