// The server's `streaming` settings (config/schema.ts holds only the reference): session bounds,
// idle and backpressure limits, and voice-activity overrides that win over each contract's defaults.
import { Type, type Static } from '@sinclair/typebox';
import { VadSettings } from '@ferry/core';

export const StreamingConfigSchema = Type.Object(
  {
    /** Open streaming sessions allowed on this server, all models together; past it a new session is closed with 1013.
     */
    maxSessions: Type.Integer({ minimum: 1, default: 256 }),
    /** Open sessions allowed per model version. */
    maxSessionsPerModel: Type.Integer({ minimum: 1, default: 128 }),
    /** A session that sends no audio for this long is closed with 4000. */
    idleTimeoutMs: Type.Integer({ minimum: 100, default: 30_000 }),
    /** Largest WebSocket message accepted (bytes); a larger one closes the session with 1009. */
    maxMessageBytes: Type.Integer({ minimum: 1024, default: 1024 * 1024 }),
    /**
     * Audio received but not yet run, in milliseconds of audio: past it the server stops reading the
     * socket (the client's sends block) until the model catches up.
     */
    maxPendingAudioMs: Type.Integer({ minimum: 100, default: 10_000 }),
    /** Bytes queued for a client that is not reading: past it audio processing pauses. */
    maxBufferedBytes: Type.Integer({ minimum: 1024, default: 256 * 1024 }),
    /** A session (or /predict event stream) paused by a slow reader for this long is closed (4001). */
    maxBlockedMs: Type.Integer({ minimum: 100, default: 10_000 }),
    /** Shortest interval between `probability` events a client may ask for, in ms of audio. */
    minProbabilityIntervalMs: Type.Integer({ minimum: 1, default: 32 }),
    /** Overrides of every streaming model's `streaming.vad` defaults. */
    vad: Type.Optional(VadSettings),
    /** Overrides per model name, applied after `vad`. */
    models: Type.Record(
      Type.String(),
      Type.Object({ vad: Type.Optional(VadSettings) }, { additionalProperties: false }),
      { default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);

export type StreamingConfig = Static<typeof StreamingConfigSchema>;
