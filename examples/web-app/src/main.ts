// The whole integration: classify the message as spam while the user types, in the browser when the
// model can run there (edge), on the Ferry server otherwise, and keep the form usable if both fail.
import { createClient } from '@ferry/client';
import { createEdgeModel } from '@ferry/client/edge';

const ferry = createClient({ baseUrl: import.meta.env.VITE_FERRY_URL ?? '', timeoutMs: 3000 });
const spam = createEdgeModel(ferry, 'spam@1', { mode: 'auto' }); // edge if small enough and WASM works

const $ = (id: string) => document.getElementById(id)!;
// Text typed while the model downloads is checked as soon as it is ready.
void spam.then(() => {
  const t = ($('message') as HTMLTextAreaElement).value;
  if (t) void check(t);
});
let typing: ReturnType<typeof setTimeout> | undefined;
$('message').addEventListener('input', (e) => {
  clearTimeout(typing);
  typing = setTimeout(() => void check((e.target as HTMLTextAreaElement).value), 120);
});

async function check(text: string) {
  const input = [{ text }];
  const m = await spam;
  const r = await m
    .predict(input)
    .catch(() => m.predictOnServer(input))
    .catch(() => null); // edge → server → give up
  const p = r?.predictions[0] as { label: string; scores: Record<string, number> } | undefined;
  $('verdict').className = `badge ${p?.label ?? ''}`;
  $('verdict').textContent = p
    ? `${p.label === 'spam' ? 'Looks like spam' : 'Looks fine'} (${(p.scores.spam! * 100).toFixed(1)}% spam)`
    : 'could not check';
  $('where').textContent = r ? `checked on the ${r.source} in ${r.latencyMs.toFixed(1)} ms` : '';
  ($('send') as HTMLButtonElement).disabled = !text.trim() || p?.label === 'spam';
}
