// Job callbacks: when a job with a `callbackUrl` ends, its final document is POSTed there, signed
// like alert webhooks by Standard Webhooks (webhooks/: `webhook-id: job_<id>` on every attempt,
// `webhook-timestamp`, `webhook-signature`).
// Delivery state lives in the job row, so a callback survives a restart and is sent
// by whichever worker process claims it; failures are retried with exponential backoff.
import type { Logger } from 'pino';
import { FerryError } from '../errors.js';
import { webhookSigner, type WebhookSigner } from '../webhooks/index.js';
import { contextFromTraceparent, traceHeaders, tracingEnabled } from '../telemetry/index.js';
import { traceparentOf } from './runner.js';
import type { JobsConfig } from '../config/schemas/jobs.js';
import type { JobDocRow, JobStore } from './job-store.js';

/** Checks a callback URL against the allow-list; throws a 400 naming `pointer` otherwise. */
export function checkCallbackUrl(raw: unknown, allow: readonly string[], pointer = '/callbackUrl'): string {
  const bad = (reason: string) =>
    new FerryError('callback-not-allowed', {
      detail: `${pointer}: ${reason}`,
      extra: { errors: [{ pointer, reason }] },
    });
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 2048)
    throw bad('expected an http(s) URL of at most 2048 characters');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad('not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw bad(`scheme ${url.protocol} is not allowed; use http or https`);
  if (url.username || url.password) throw bad('credentials in the URL are not allowed');
  if (allow.length === 0) throw bad('callbacks are disabled on this server (jobs.webhooks.allow is empty)');
  // Encoded separators or dots would be decoded by some receivers into another path than the one
  // matched here (`/hooks%2F..%2Fadmin`): refused outright.
  if (/%(2f|5c|2e)/i.test(url.pathname) || url.pathname.includes('\\'))
    throw bad('encoded "/", "\\" or "." in the path are not allowed');
  const ok = allow.some((entry) => allowedBy(entry, url));
  if (!ok)
    throw bad(
      `${url.origin}${url.pathname.slice(0, 200)} is not under an entry of the callback allow-list (jobs.webhooks.allow)`,
    );
  return url.toString();
}

/**
 * Whether `url` is under the allow-list entry: same scheme, host and port (the parsed origin), and a
 * path whose segments begin with the entry's segments (`/hooks` allows `/hooks` and `/hooks/x`, never
 * `/hooksevil`).
 */
function allowedBy(entry: string, url: URL): boolean {
  let a: URL;
  try {
    a = new URL(entry);
  } catch {
    return false;
  }
  if (a.origin !== url.origin) return false;
  const segments = (p: string) => p.split('/').filter((s) => s !== '');
  const want = segments(a.pathname);
  const have = segments(url.pathname);
  return want.length <= have.length && want.every((s, i) => s === have[i]);
}

export interface WebhookHooks {
  onResult?(result: 'delivered' | 'retried' | 'failed'): void;
}

export class WebhookSender {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private again = false;
  private closed = false;
  private readonly signer: WebhookSigner | undefined;

  constructor(
    private readonly store: JobStore,
    private readonly cfg: JobsConfig['webhooks'],
    private readonly log: Logger,
    private readonly hooks: WebhookHooks = {},
    intervalMs = 1000,
  ) {
    this.signer = webhookSigner([cfg.secret, ...(cfg.previousSecrets ?? [])]);
    this.timer = setInterval(() => this.kick(), intervalMs);
    this.timer.unref();
  }

  /** Looks for due callbacks now (a job just ended). */
  kick(): void {
    if (this.closed) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    this.sweep()
      .catch((err: unknown) => this.log.warn({ err }, 'jobs: webhook sweep failed'))
      .finally(() => {
        this.busy = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async sweep(): Promise<void> {
    const due = await this.store.dueCallbacks(Date.now(), 20);
    await Promise.all(
      due.map(async (row) => {
        // Lease: while this delivery runs, no other process takes it.
        if (!(await this.store.claimCallback(row, Date.now() + this.cfg.timeoutMs * 2))) return;
        await this.deliver(row);
      }),
    );
  }

  private async deliver(row: JobDocRow): Promise<void> {
    const attempt = Number(row.callback_attempts) + 1;
    const body = JSON.stringify(
      this.store.toDocument({ ...row, callback_state: 'pending', callback_attempts: attempt }),
    );
    let error: string | undefined;
    let permanent = false;
    // The traceparent lives in the job's input, which the delivery row leaves out (inputs can be large):
    // read the whole row only when tracing is on.
    const full = tracingEnabled() ? await this.store.get(row.id) : undefined;
    try {
      const res = await fetch(row.callback_url!, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'ferry-job-id': row.id,
          'ferry-delivery-attempt': String(attempt),
          ...this.signer?.(`job_${row.id}`, body),
          // The receiver's span joins the trace of the request that submitted the job.
          ...(full && traceHeaders(contextFromTraceparent(traceparentOf(this.store.input(full))))),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.cfg.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) {
        error = `HTTP ${res.status}`;
        // A 4xx will not improve with retries (bad path, signature refused), except timeouts and rate limits.
        permanent = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
      }
    } catch (e) {
      error = (e as Error).name === 'TimeoutError' ? `no answer within ${this.cfg.timeoutMs} ms` : (e as Error).message;
    }
    if (error === undefined) {
      await this.store.callbackOutcome(row.id, 'delivered', null, null);
      this.hooks.onResult?.('delivered');
      return;
    }
    if (permanent || attempt >= this.cfg.maxAttempts) {
      this.log.warn({ job: row.id, attempt, error }, 'jobs: callback delivery failed; giving up');
      await this.store.callbackOutcome(row.id, 'failed', null, error);
      this.hooks.onResult?.('failed');
      return;
    }
    await this.store.callbackOutcome(row.id, 'pending', Date.now() + this.cfg.backoffMs * 2 ** (attempt - 1), error);
    this.hooks.onResult?.('retried');
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }
}
