// Outgoing webhooks (job callbacks, alerts) signed by the Standard Webhooks specification, through its
// maintained `standardwebhooks` package: `webhook-id` (the same on every retry of one message, so
// receivers can drop duplicates), `webhook-timestamp` (unix seconds of this attempt) and
// `webhook-signature` (`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, one per secret,
// space-separated). Signing with several secrets is the standard's rotation: list the new secret
// first and keep the old one in `previousSecrets` until every receiver has the new one.
import { Webhook } from 'standardwebhooks';

/** The three headers a signed delivery carries. */
export interface StandardWebhookHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/**
 * A secret as the standard writes it (`whsec_<base64 key>`), or any other string, whose UTF-8 bytes
 * are then the key (receivers must base64-encode it for libraries that expect `whsec_` secrets).
 */
function keyOf(secret: string): Webhook {
  return secret.startsWith('whsec_') ? new Webhook(secret) : new Webhook(secret, { format: 'raw' });
}

export type WebhookSigner = (messageId: string, body: string, at?: Date) => StandardWebhookHeaders;

/**
 * A signer over the non-empty secrets given (the current one first); undefined when there is none,
 * so deliveries go unsigned.
 * @example
 *   const sign = webhookSigner([cfg.secret, ...cfg.previousSecrets]);
 *   const headers = sign?.(`job_${id}`, body) ?? {};
 */
export function webhookSigner(secrets: readonly string[]): WebhookSigner | undefined {
  const keys = secrets.filter((s) => s.length > 0).map(keyOf);
  if (keys.length === 0) return undefined;
  return (messageId, body, at = new Date()) => ({
    'webhook-id': messageId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': keys.map((k) => k.sign(messageId, at, body)).join(' '),
  });
}

/**
 * For receivers written in TypeScript: whether a delivery verifies against any of `secrets` (the
 * standard's five-minute timestamp tolerance applies). Other languages use their Standard Webhooks
 * library; docs/webhooks.md shows Node and Python.
 */
export function verifyWebhook(
  body: string,
  headers: StandardWebhookHeaders | Readonly<Record<string, string | string[] | undefined>>,
  secrets: readonly string[],
): boolean {
  const flat: Record<string, string> = {};
  for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
    const v = (headers as Readonly<Record<string, string | string[] | undefined>>)[name];
    const s = Array.isArray(v) ? v[0] : v;
    if (typeof s !== 'string') return false;
    flat[name] = s;
  }
  return secrets.some((secret) => {
    try {
      keyOf(secret).verify(body, flat);
      return true;
    } catch {
      return false;
    }
  });
}
