// Prompt compression: when a chat's history does not fit the route's `maxPromptTokens`, the older turns
// that trimming would drop are summarised by a cheap tier instead, and the summary goes into the prompt
// as a system message in front of the newest turns. The plan is made up front (what is kept, what is
// summarised, with room left for the summary); the summary call itself happens after the caches and the
// budget reservation, so a cache hit costs no summary and the budget covers it.
import type { ChatMessage, ChatRequest } from './types.js';
import { trimHistory, type MessageCounter } from './tokens.js';

export interface CompressionConfig {
  /** The route's tier whose targets write the summary (empty: no compression, only trimming). */
  tier: string;
  /** The summary's `max_tokens`; the newest turns are trimmed to leave this much room for it. */
  maxSummaryTokens: number;
  /** The summariser's instructions (a system message). */
  instructions: string;
}

export interface CompressionPlan {
  /** System messages and the newest turns that fit next to a summary of at most maxSummaryTokens. */
  kept: ChatMessage[];
  /** The older turns to summarise, oldest first. */
  older: ChatMessage[];
}

/** The framing of the summary message: its tokens are reserved along with the summary's. */
export const SUMMARY_PREFIX = 'Summary of the earlier conversation: ';
const FRAMING_TOKENS = 16;

const isSystem = (m: ChatMessage) => m.role === 'system' || m.role === 'developer';

/**
 * What to keep and what to summarise, or undefined when a summary cannot help: nothing would be
 * dropped, or the system prompt and the newest turn leave no room for a summary.
 */
export function planCompression(
  messages: ChatMessage[],
  maxPromptTokens: number,
  maxSummaryTokens: number,
  count: MessageCounter,
): CompressionPlan | undefined {
  const room = maxPromptTokens - maxSummaryTokens - FRAMING_TOKENS;
  if (room <= 0) return undefined;
  const fitted = trimHistory(messages, room, count);
  if (!fitted || fitted.dropped === 0) return undefined;
  const kept = new Set(fitted.messages);
  const older = messages.filter((m) => !kept.has(m) && !isSystem(m));
  return older.length ? { kept: fitted.messages, older } : undefined;
}

/** The summariser's request: its instructions and the older turns as a transcript. */
export function summaryRequest(cfg: CompressionConfig, older: readonly ChatMessage[]): ChatRequest {
  const transcript = older.map((m) => `${m.role}: ${m.content}`).join('\n\n');
  return {
    messages: [
      { role: 'system', content: cfg.instructions.replace('{maxTokens}', String(cfg.maxSummaryTokens)) },
      { role: 'user', content: transcript },
    ],
    maxTokens: cfg.maxSummaryTokens,
    stop: [],
    stream: false,
    temperature: 0,
  };
}

/** The kept messages with the summary as a system message in front of the first kept turn. */
export function withSummary(kept: readonly ChatMessage[], summary: string): ChatMessage[] {
  const at = kept.findIndex((m) => !isSystem(m));
  const msg: ChatMessage = { role: 'system', content: SUMMARY_PREFIX + summary.trim() };
  return at === -1 ? [...kept, msg] : [...kept.slice(0, at), msg, ...kept.slice(at)];
}
