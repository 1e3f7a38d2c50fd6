// WebSocket close codes a streaming session ends with. 1000–1015 are RFC 6455's; 4000–4999 are
// private-use codes of Ferry. The close reason (≤ 123 bytes) says what happened in words.
export const CLOSE = {
  /** The client sent `{"type":"end"}` and every event was delivered. */
  normal: 1000,
  /** The server is shutting down. */
  goingAway: 1001,
  /** A message the protocol does not allow (unknown JSON, text where audio was expected). */
  policy: 1008,
  /** Audio that is not what the session was opened for (a float32 sample outside [-1, 1]). */
  invalidData: 1007,
  /** A message larger than streaming.maxMessageBytes. */
  tooBig: 1009,
  /** The model failed; the session's state is gone. */
  internal: 1011,
  /** Too many sessions open (server-wide or for this model); retry later. */
  tryAgainLater: 1013,
  /** No audio for streaming.idleTimeoutMs. */
  idle: 4000,
  /** The client stopped reading events for longer than streaming.maxBlockedMs. */
  slowConsumer: 4001,
} as const;

/** A close reason fits the 123 bytes a close frame allows. */
export function closeReason(text: string): string {
  const b = Buffer.from(text);
  return b.length <= 123
    ? text
    : b
        .subarray(0, 120)
        .toString('utf8')
        .replace(/\uFFFD+$/, '') + '...';
}
