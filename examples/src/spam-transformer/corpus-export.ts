// Writes the SpamAssassin corpus with the `spam` example's own train / held-out split as JSON Lines,
// for the PyTorch training script (train.py) to read: one source of the data and the split for both
// models, so the transformer's card compares like with like.
// Run: node examples/dist/spam-transformer/corpus-export.js OUT.jsonl
import { writeFileSync } from 'node:fs';
import { isMain } from '../lib/main.js';
import { loadCorpus, stratifiedSplit } from '../spam/data.js';

/** The `spam` example's split: seed 2002, 20% of each label held out (see examples/src/spam/train.ts). */
export const SPLIT = { seed: 2002, heldOutShare: 0.2 } as const;

export interface CorpusRow {
  id: string;
  text: string;
  label: 'ham' | 'spam';
  split: 'train' | 'heldOut';
}

export function corpusRows(): CorpusRow[] {
  const { messages } = loadCorpus();
  const { heldOut } = stratifiedSplit(messages, SPLIT.heldOutShare, SPLIT.seed);
  const held = new Set(heldOut);
  return messages.map((m, i) => ({ id: m.id, text: m.text, label: m.label, split: held.has(i) ? 'heldOut' : 'train' }));
}

if (isMain(import.meta.url)) {
  const out = process.argv[2];
  if (!out) throw new Error('usage: corpus-export.js OUT.jsonl');
  const rows = corpusRows();
  writeFileSync(out, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  console.log(`${rows.length} messages written to ${out}`);
}
