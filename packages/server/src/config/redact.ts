// Secrets out of everything Ferry prints about its configuration: `GET /v1/admin/config`,
// `ferry config`, and log lines. Generic on purpose (a walk over the whole tree, not a list of
// paths), so a setting added later with a secret-sounding name, or a URL with credentials in any
// section, is covered without anyone remembering to list it.

export const REDACTED = '[redacted]';

/** Setting names whose values are secrets (or digests of them): shown as `[redacted]` when set. */
const SECRET_KEY = /(secret|password|passwd|token|apikey|api_key|sha256|credential|private)/i;

/** A URL with `user:pass@` (or `user@`): the userinfo replaced. Anything else unchanged. */
export function redactUrlCredentials(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#@\s]*@/i, `$1${REDACTED}@`);
}

/** A deep copy of `value` with secret settings and URL credentials redacted. */
export function redactConfig<T>(value: T): T {
  const walk = (v: unknown, key: string): unknown => {
    if (typeof v === 'string') {
      if (SECRET_KEY.test(key)) return v === '' ? v : REDACTED;
      return redactUrlCredentials(v);
    }
    if (Array.isArray(v)) return v.map((x) => walk(x, key));
    if (v !== null && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    return v;
  };
  return walk(value, '') as T;
}

/** Config paths that hold a webhook destination: credentials there are refused at start. */
export function webhookUrlProblems(cfg: {
  alerts: { webhookUrl: string };
  jobs: { webhooks: { allow: readonly string[] } };
}): string[] {
  const problems: string[] = [];
  const check = (where: string, raw: string) => {
    if (!raw) return;
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      problems.push(`${where}: "${redactUrlCredentials(raw).slice(0, 200)}" is not a URL`);
      return;
    }
    if (url.username || url.password)
      problems.push(
        `${where}: credentials in the URL (user:pass@) are not allowed: fetch refuses to send them, so nothing would be delivered, and they would be logged; sign deliveries with a secret instead (alerts.secret, jobs.webhooks.secret) or put a token in the path`,
      );
  };
  check('alerts.webhookUrl', cfg.alerts.webhookUrl);
  cfg.jobs.webhooks.allow.forEach((u, i) => check(`jobs.webhooks.allow[${i}]`, u));
  return problems;
}
