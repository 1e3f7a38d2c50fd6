// The one place that decides how ONNX Runtime sessions are created: threads, graph optimisation
// level and execution providers, from the server config overridden by a model's `runtime` section.
import type { InferenceSession } from 'onnxruntime-node';
import type { Manifest } from '@ferry/core';
import type { FerryConfig } from '../../config/index.js';

/** Structured-clone-safe subset of ONNX Runtime's session options that Ferry sets. */
export interface OrtSessionOptions {
  intraOpNumThreads: number;
  interOpNumThreads: number;
  graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all';
  executionProviders: string[];
}

export function sessionOptionsFor(cfg: FerryConfig, manifest: Manifest): OrtSessionOptions {
  const r = manifest.runtime ?? {};
  return {
    intraOpNumThreads: r.intraOpThreads ?? cfg.runtime.intraOpThreads,
    interOpNumThreads: r.interOpThreads ?? cfg.runtime.interOpThreads,
    graphOptimizationLevel: r.graphOptimizationLevel ?? cfg.runtime.graphOptimizationLevel,
    executionProviders: r.executionProviders ?? cfg.runtime.executionProviders,
  };
}

export function toOrtOptions(o: OrtSessionOptions): InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: o.intraOpNumThreads,
    interOpNumThreads: o.interOpNumThreads,
    graphOptimizationLevel: o.graphOptimizationLevel,
    executionProviders: o.executionProviders,
    executionMode: 'sequential',
    // Memory patterns help fixed shapes and cost little for dynamic batch sizes.
    enableMemPattern: true,
    enableCpuMemArena: true,
    // Failed runs reach the caller as errors and Ferry's own log; ONNX Runtime's stderr copy is noise.
    logSeverityLevel: 4,
  };
}
