// The routing hook of the predict path. Serving owns *when* a request is routed and copied (every
// surface — v1, v2, SSE predict, jobs, streams — goes through ModelService.route and its predict
// calls); the rollout manager (rollout/) implements *what* happens: canary choice, deprecation and
// the shadow comparison. Defined here so serving never imports rollout/.
import type { Prediction, TensorValue } from '@ferry/core';
import type { ModelVersion } from '../repository/index.js';
import type { PredictResult } from './predictor.js';

/** A model as a request names it: `model` may carry `@version|alias`; `version` comes from the path. */
export interface ModelRef {
  model: string;
  version?: string;
}

/** Who is asking, for the sticky canary bucket: the first of these that is set is used. */
export interface ClientIdentity {
  /** The Ferry-Client-Id header. */
  clientIdHeader?: string;
  /** `?clientId=` (WebSocket streams, where browsers cannot set headers). */
  clientIdQuery?: string;
  /** The API key's id. */
  principalId?: string;
  /** The client's address. */
  ip?: string;
}

/** Deprecation headers of the version a request resolved to (RFC 9745 Deprecation, Sunset, Link). */
export interface DeprecationNotice {
  deprecation: string;
  sunset?: string;
  link: string;
}

/** The version a request is served by, and what the transport tells the client about the choice. */
export interface Routed {
  readonly version: ModelVersion;
  /** Set for unpinned requests of a model with a canary: the arm the client landed on. */
  readonly arm?: 'stable' | 'canary';
  readonly deprecation?: DeprecationNotice;
}

/** Where a shadow copy came from (counted per source in the rollout status). */
export type ShadowSource = 'predict' | 'infer' | 'jobs';

/** A served answer to copy to the model's shadow version. */
export type ShadowCopy =
  | {
      kind: 'instances';
      source: ShadowSource;
      served: Pick<PredictResult, 'version' | 'predictions' | 'fallback'>;
      instances: unknown;
      base: string;
      servedMs: number;
    }
  | {
      kind: 'tensors';
      served: ModelVersion;
      /** A copy of the request's feeds (the served run transfers its own to a worker thread). */
      feeds: Record<string, TensorValue>;
      outputs: Record<string, TensorValue>;
      requested: string[] | undefined;
      servedMs: number;
    };

export interface PredictRouter {
  /**
   * The version a request is served by. Throws the request's problem (400 bad client id, 404, 410
   * version-retired); pinned refs are never re-routed.
   */
  route(ref: ModelRef, client: ClientIdentity): Routed;
  /** Whether a request of `served` is copied to a shadow; decided once, before it runs. */
  sampleShadow(served: ModelVersion): boolean;
  /** Copies an answer that `sampleShadow` picked; returns at once, the copy runs off the request path. */
  shadow(copy: ShadowCopy): void;
}

/** A completed job's answer, copied as one sample: its first `maxInstances` instances. */
export interface CompletedRun {
  version: ModelVersion;
  instances: unknown[];
  base: string;
  predictions: Prediction[];
  fallback: boolean;
  runMs: number;
}

/** Copies of tensors to keep for a shadow: the served run detaches the originals. */
export function cloneFeeds(feeds: Record<string, TensorValue>): Record<string, TensorValue> {
  return Object.fromEntries(
    Object.entries(feeds).map(([k, t]) => [
      k,
      { ...t, dims: [...t.dims], data: t.data.slice() as TensorValue['data'] },
    ]),
  );
}
