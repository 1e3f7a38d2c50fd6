// A worker thread that checks large job submissions (jobs/submit-check.ts) so the HTTP thread only
// parses and stores them: a 100,000-row job's contract check and preprocessing no longer stall
// every other request. The instances arrive as JSON text (one string copy, no structured clone of
// 100,000 objects) and are checked with validators compiled once per model version.
import { parentPort } from 'node:worker_threads';
import { compileEncoder, type Encoder, type Manifest, type RequestLimits } from '@ferry/core';
import { FerryError } from '../errors.js';
import { compileRequestValidator, type RequestValidator } from '../serving/predict/validation.js';
import { answerRequests } from '../serving/runtime/rpc.js';
import { checkJobRows, type SubmitCheckLimits } from './submit-check.js';

export interface SubmitCheckRequest {
  type: 'check';
  id: number;
  /** Identifies the compiled validator (version key and manifest revision). */
  key: string;
  manifest: Manifest;
  limits: RequestLimits & SubmitCheckLimits;
  json: string;
  base: string;
}
export type SubmitCheckReply =
  | { type: 'checked'; id: number; problem?: { code: string; detail: string; extra: Record<string, unknown> } }
  | { type: 'error'; id: number; message: string; code?: string };

const compiled = new Map<string, { validator: RequestValidator; encoder: Encoder }>();

answerRequests<SubmitCheckRequest>(parentPort!, (msg) => {
  let c = compiled.get(msg.key);
  if (!c) {
    c = {
      validator: compileRequestValidator(msg.manifest, { ...msg.limits, maxInstances: msg.limits.step }),
      encoder: compileEncoder(msg.manifest),
    };
    if (compiled.size > 32) compiled.clear();
    compiled.set(msg.key, c);
  }
  let reply: SubmitCheckReply = { type: 'checked', id: msg.id };
  try {
    checkJobRows(c.validator, c.encoder, JSON.parse(msg.json) as unknown[], msg.base, msg.limits);
  } catch (e) {
    if (!(e instanceof FerryError)) throw e;
    reply = { type: 'checked', id: msg.id, problem: { code: e.code, detail: e.detail, extra: e.extra } };
  }
  parentPort!.postMessage(reply);
});
