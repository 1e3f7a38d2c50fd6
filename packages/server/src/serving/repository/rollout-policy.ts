// The rollout policy of one model, read from `models/<name>/aliases.yaml`:
//
//   stable: 1.0.0
//   canary: { version: 1.1.0, weight: 10 }     # % of unpinned traffic, sticky per client
//   shadow: { version: 2.0.0, sample: 0.25 }   # share of served requests copied to it, never answered from
//   deprecated:
//     "1.0.0": { sunset: 2027-01-31, successor: 1.1.0 }
//     "1": { since: 2026-11-01, sunset: 2027-03-01 }  # a whole major
//
// A plain `alias: version` still works for any alias; `canary` and `shadow` also become aliases.
import semver from 'semver';

export interface CanaryPolicy {
  readonly version: string;
  readonly weight: number;
}
export interface ShadowPolicy {
  readonly version: string;
  readonly sample: number;
}
export interface DeprecationPolicy {
  /** An exact version (`1.0.0`) or a whole major (`1`). */
  readonly match: string;
  readonly since?: Date;
  readonly sunset?: Date;
  /** The version clients should move to (exact); defaults to the newest version that is not deprecated. */
  readonly successor: string;
}
export interface RolloutPolicy {
  readonly canary?: CanaryPolicy;
  readonly shadow?: ShadowPolicy;
  readonly deprecated: readonly DeprecationPolicy[];
}

export const EMPTY_POLICY: RolloutPolicy = Object.freeze({
  deprecated: Object.freeze([]) as readonly DeprecationPolicy[],
});

const ALIAS_NAME = /^[a-z][a-z0-9-]{0,31}$/;

export interface ParsedAliases {
  aliases: Record<string, string>;
  rollout: RolloutPolicy;
}

function date(raw: unknown, where: string, fail: (w: string, m: string) => never): Date {
  const text = raw instanceof Date ? raw.toISOString() : String(raw);
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text))
    fail(where, `expected a date like 2027-01-31 or 2027-01-31T12:00:00Z, got "${text.slice(0, 40)}"`);
  // A bare date means the start of that day in UTC.
  const d = new Date(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text);
  if (Number.isNaN(d.getTime())) fail(where, `"${text}" is not a real date`);
  return d;
}

/**
 * Parses the YAML document of aliases.yaml against the model's versions (newest first). `fail`
 * throws with the file and the JSON pointer of the bad key.
 */
export function parseAliases(
  data: unknown,
  versions: readonly string[],
  fail: (where: string, message: string) => never,
): ParsedAliases {
  if (data === null || data === undefined) return { aliases: {}, rollout: EMPTY_POLICY };
  if (typeof data !== 'object' || Array.isArray(data)) fail('', 'must map alias names to versions');
  const has = (v: string) => versions.includes(v);
  const needVersion = (raw: unknown, where: string): string => {
    const t = String(raw);
    if (!has(t)) fail(where, `version "${t.slice(0, 40)}" does not exist (have ${versions.join(', ')})`);
    return t;
  };
  const aliases: Record<string, string> = {};
  let canary: CanaryPolicy | undefined;
  let shadow: ShadowPolicy | undefined;
  const deprecated: DeprecationPolicy[] = [];
  for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
    if (key === 'deprecated') continue;
    if (!ALIAS_NAME.test(key) || key === 'latest')
      fail(`/${key}`, 'invalid alias name (lower-case letters, digits and \'-\', not "latest")');
    const isObj = value !== null && typeof value === 'object' && !Array.isArray(value);
    if ((key === 'canary' || key === 'shadow') && isObj) {
      const o = value as Record<string, unknown>;
      const extra = Object.keys(o).filter((k) => !['version', key === 'canary' ? 'weight' : 'sample'].includes(k));
      if (extra.length)
        fail(`/${key}/${extra[0]}`, `unknown key (${key} takes version and ${key === 'canary' ? 'weight' : 'sample'})`);
      const version = needVersion(o.version, `/${key}/version`);
      aliases[key] = version;
      if (key === 'canary') {
        const w = o.weight ?? 0;
        if (typeof w !== 'number' || !(w >= 0 && w <= 100))
          fail('/canary/weight', 'expected a percentage from 0 to 100');
        canary = { version, weight: w as number };
      } else {
        const sample = o.sample ?? 1;
        if (typeof sample !== 'number' || !(sample >= 0 && sample <= 1))
          fail('/shadow/sample', 'expected a share from 0 to 1 (0.1 = one request in ten)');
        shadow = { version, sample: sample as number };
      }
      continue;
    }
    if (isObj || Array.isArray(value)) fail(`/${key}`, 'expected a version');
    aliases[key] = needVersion(value, `/${key}`);
  }
  // A bare `shadow: 2.0.0` copies all traffic; a bare `canary: x` is an alias with no traffic share.
  if (aliases.shadow && !shadow) shadow = { version: aliases.shadow, sample: 1 };
  if (aliases.canary && !canary) canary = { version: aliases.canary, weight: 0 };

  const dep = (data as Record<string, unknown>).deprecated;
  if (dep !== undefined && dep !== null) {
    if (typeof dep !== 'object' || Array.isArray(dep))
      fail('/deprecated', 'must map versions or majors to {since, sunset, successor}');
    const isDeprecated = (v: string) =>
      Object.keys(dep as object).some((m) => m === v || (/^\d+$/.test(m) && semver.major(v) === Number(m)));
    for (const [match, raw] of Object.entries(dep as Record<string, unknown>)) {
      const where = `/deprecated/${match}`;
      if (/^\d+$/.test(match)) {
        if (!versions.some((v) => semver.major(v) === Number(match))) fail(where, `no version with major ${match}`);
      } else needVersion(match, where);
      const o = (raw ?? {}) as Record<string, unknown>;
      if (typeof o !== 'object' || Array.isArray(o)) fail(where, 'expected {since, sunset, successor}');
      const extra = Object.keys(o).filter((k) => !['since', 'sunset', 'successor'].includes(k));
      if (extra.length) fail(`${where}/${extra[0]}`, 'unknown key (since, sunset, successor)');
      let successor: string | undefined;
      if (o.successor !== undefined) {
        successor = needVersion(o.successor, `${where}/successor`);
        if (isDeprecated(successor)) fail(`${where}/successor`, `${successor} is deprecated itself`);
      } else {
        successor = versions.find(
          (v) => !isDeprecated(v) && semver.gt(v, /^\d+$/.test(match) ? `${match}.999999.999999` : match),
        );
        if (!successor)
          fail(
            where,
            'no newer version that is not deprecated: publish the successor first or name it with `successor`',
          );
      }
      deprecated.push({
        match,
        successor: successor!,
        ...(o.since !== undefined && { since: date(o.since, `${where}/since`, fail) }),
        ...(o.sunset !== undefined && { sunset: date(o.sunset, `${where}/sunset`, fail) }),
      });
    }
  }
  if (canary && shadow && canary.version === shadow.version)
    fail('/shadow/version', 'the shadow must differ from the canary');
  return { aliases, rollout: { ...(canary && { canary }), ...(shadow && { shadow }), deprecated } };
}

/** The deprecation that covers a version (the exact entry wins over its major's). */
export function deprecationOf(policy: RolloutPolicy, version: string): DeprecationPolicy | undefined {
  return (
    policy.deprecated.find((d) => d.match === version) ??
    policy.deprecated.find((d) => /^\d+$/.test(d.match) && semver.major(version) === Number(d.match))
  );
}
