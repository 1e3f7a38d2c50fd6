// Refused requests by reason, for alerting on key guessing or a client with a revoked key.
import { Counter, type Registry } from 'prom-client';

export function authRefusalCounter(registry: Registry): (code: string) => void {
  const c = new Counter({
    name: 'ferry_auth_refusals_total',
    help: 'Requests refused by access control, by code (unauthorized, forbidden, route-not-found for management without keys)',
    labelNames: ['code'],
    registers: [registry],
  });
  return (code) => c.inc({ code });
}
