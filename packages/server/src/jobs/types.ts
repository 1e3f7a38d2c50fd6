// The words of the job API: states, the job document a client sees, and the errors a job ends with.
export const JOB_STATES = ['queued', 'active', 'completed', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const TERMINAL_STATES: readonly JobState[] = ['completed', 'failed', 'cancelled'];
export const isTerminal = (s: string): boolean => (TERMINAL_STATES as readonly string[]).includes(s);

/** Why a job failed (or the last retryable error of one that is being retried). */
export interface JobError {
  code: string;
  detail: string;
  /** For invalid input: the JSON pointer and reason of each bad field. */
  errors?: unknown;
}

/** A job as `GET /v1/jobs/{id}` answers it. Times are ISO 8601 strings. */
export interface JobDocument {
  id: string;
  model: string;
  version: string;
  state: JobState;
  /** 0..1: share of the job's instances done. */
  progress: number;
  /** `worker`: the process that ran the job to completion (`host:pid:id`, as in its log). */
  result: { predictions: unknown[]; worker?: string } | null;
  error: JobError | null;
  /** Runs started, including a run lost to a crashed worker. */
  attempts: number;
  maxAttempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  cancelRequested?: boolean;
  callback?: { url: string; state: string | null; attempts: number; error: string | null };
}

/** A job's event as published to SSE watchers: the changed fields, ordered by `seq`. */
export interface JobEvent {
  id: string;
  seq: number;
  state: JobState;
  progress: number;
}
