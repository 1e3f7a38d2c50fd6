#!/usr/bin/python3
# Trains `ham-gpt`, Ferry's example chat decoder, and writes models/ham-gpt/3.0.0/: a small GPT-style
# decoder (pre-LayerNorm blocks, GELU, learned positions, tied embeddings, multi-query attention: one
# key/value head for all query heads, so the cache a decode step carries is small) with a byte-level BPE
# tokenizer that this script also learns, on the ham messages of the SpamAssassin corpus as chat
# exchanges (subject as the user, body as the assistant). Exported in the Hugging Face decoder layout
# with past key values (input_ids, attention_mask, position_ids, past_key_values.N.key/value ->
# logits, present.N.key/value), which Ferry's decode workers run with continuous batching.
#
# Python is needed only to retrain: the artifacts are committed, and `npm ci` / `npm test` never run this.
#   npx tsc -b examples && node examples/dist/ham-gpt/dump-corpus.js /tmp/corpus.json
#   OPENBLAS_NUM_THREADS=1 /usr/bin/python3 examples/src/ham-gpt/train.py /tmp/corpus.json models/ham-gpt/3.0.0 \
#       --minutes 45 --threads 1 --kv-heads 1
# Debian's python3-torch, python3-onnx and python3-numpy, and libopenblas0-pthread: Debian's torch calls
# the system BLAS, and without OpenBLAS that is the reference BLAS, about 14x slower per training step here
# (8.2 s vs 0.57 s for a batch of 24 x 128 tokens at width 128 on one thread).
import argparse
import collections
import json
import math
import os
import re
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SPECIALS = ['<|endoftext|>', '<|user|>', '<|assistant|>', '<|end|>']
# Pre-tokenisation: words with their leading space, digit runs, punctuation runs, whitespace. ASCII
# classes only, so Python's `re` and the JavaScript tokenizer Ferry loads split text identically.
PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]{1,3}| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+"
SPLIT = re.compile(PATTERN)
SPECIAL_SPLIT = re.compile('(' + '|'.join(re.escape(s) for s in SPECIALS) + ')')


def bytes_to_unicode():
    """GPT-2's reversible map from bytes to printable characters (what the ByteLevel pre-tokenizer uses)."""
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_CHARS = bytes_to_unicode()


def words_of(text):
    """Pre-tokens of plain text (no special tokens), each as its byte-level characters."""
    return [''.join(BYTE_CHARS[b] for b in w.encode('utf-8')) for w in SPLIT.findall(text)]


def learn_bpe(texts, merges_wanted):
    counts = collections.Counter()
    for t in texts:
        for seg in SPECIAL_SPLIT.split(t):
            if seg and seg not in SPECIALS:
                counts.update(words_of(seg))
    words = [list(w) for w in counts]
    freq = list(counts.values())
    pairs = collections.Counter()
    where = collections.defaultdict(set)
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pairs[(a, b)] += freq[i]
            where[(a, b)].add(i)
    merges = []
    for _ in range(merges_wanted):
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        if pairs[best] < 2:
            break
        merges.append(best)
        a, b = best
        joined = a + b
        for i in list(where[best]):
            w = words[i]
            for x, y in zip(w, w[1:]):
                pairs[(x, y)] -= freq[i]
                if pairs[(x, y)] <= 0:
                    del pairs[(x, y)]
                where[(x, y)].discard(i)
            out = []
            j = 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    out.append(joined)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            words[i] = out
            for x, y in zip(out, out[1:]):
                pairs[(x, y)] += freq[i]
                where[(x, y)].add(i)
        where.pop(best, None)
    return merges


class Tokenizer:
    def __init__(self, merges):
        self.merges = merges
        self.rank = {m: r for r, m in enumerate(merges)}
        self.vocab = {s: i for i, s in enumerate(SPECIALS)}
        for b in range(256):
            self.vocab[BYTE_CHARS[b]] = len(self.vocab)
        for a, b in merges:
            self.vocab.setdefault(a + b, len(self.vocab))
        self.inverse = {i: s for s, i in self.vocab.items()}
        self.byte_of = {c: b for b, c in BYTE_CHARS.items()}
        self.cache = {}

    def word(self, w):
        if w in self.cache:
            return self.cache[w]
        parts = list(w)
        while len(parts) > 1:
            ranked = [(self.rank.get((x, y), 1 << 30), k) for k, (x, y) in enumerate(zip(parts, parts[1:]))]
            r, k = min(ranked)
            if r == 1 << 30:
                break
            parts[k:k + 2] = [parts[k] + parts[k + 1]]
        ids = [self.vocab[p] for p in parts]
        self.cache[w] = ids
        return ids

    def encode(self, text):
        ids = []
        for seg in SPECIAL_SPLIT.split(text):
            if not seg:
                continue
            if seg in SPECIALS:
                ids.append(self.vocab[seg])
            else:
                for w in words_of(seg):
                    ids.extend(self.word(w))
        return ids

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            s = self.inverse[i]
            if s in SPECIALS:
                out.extend(s.encode())
            else:
                out.extend(self.byte_of[c] for c in s)
        return out.decode('utf-8', errors='replace')

    def json(self):
        return {
            'version': '1.0',
            'truncation': None,
            'padding': None,
            'added_tokens': [
                {'id': i, 'content': s, 'single_word': False, 'lstrip': False, 'rstrip': False, 'normalized': False,
                 'special': True} for i, s in enumerate(SPECIALS)],
            'normalizer': None,
            'pre_tokenizer': {'type': 'Sequence', 'pretokenizers': [
                {'type': 'Split', 'pattern': {'Regex': PATTERN}, 'behavior': 'Isolated', 'invert': False},
                {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': False},
            ]},
            'post_processor': None,
            'decoder': {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': False},
            'model': {'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': None,
                      'end_of_word_suffix': None, 'fuse_unk': False, 'byte_fallback': False, 'ignore_merges': False,
                      'vocab': self.vocab, 'merges': [f'{a} {b}' for a, b in self.merges]},
        }


class Block(nn.Module):
    """Pre-LayerNorm block; `kv_heads` < `heads` is grouped-query attention (1: multi-query). Each key/value
    head serves `heads // kv_heads` query heads through a broadcast in the matmul, never copied per query
    head, so the exported cache holds `kv_heads` heads and a decode step reads and concatenates that few."""

    def __init__(self, d, heads, ff, kv_heads):
        super().__init__()
        assert heads % kv_heads == 0, 'heads must be a multiple of kv_heads'
        self.heads, self.kv_heads, self.hd = heads, kv_heads, d // heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, d + 2 * kv_heads * self.hd)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ff)
        self.fc2 = nn.Linear(ff, d)

    def forward(self, x, allowed, past_k, past_v):
        b, s, d = x.shape
        h, kv, hd = self.heads, self.kv_heads, self.hd
        q, k, v = self.qkv(self.ln1(x)).split([d, kv * hd, kv * hd], dim=2)
        # q: [b, kv, group, s, hd]; k, v: [b, kv, s, hd] (the cache layout).
        q = q.view(b, s, kv, h // kv, hd).permute(0, 2, 3, 1, 4)
        k = torch.cat([past_k, k.view(b, s, kv, hd).transpose(1, 2)], dim=2)
        v = torch.cat([past_v, v.view(b, s, kv, hd).transpose(1, 2)], dim=2)
        scores = q @ k.transpose(2, 3).unsqueeze(2) / math.sqrt(hd)
        # A finite mask value: a fully masked row (a padding query) softmaxes to uniform, never NaN.
        scores = torch.where(allowed.unsqueeze(2), scores, torch.full_like(scores, -1e9))
        a = (scores.softmax(-1) @ v.unsqueeze(2)).permute(0, 3, 1, 2, 4).reshape(b, s, d)
        x = x + self.proj(a)
        x = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
        return x, k, v


class Decoder(nn.Module):
    def __init__(self, vocab, d, layers, heads, ff, positions, kv_heads):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(positions, d)
        self.blocks = nn.ModuleList(Block(d, heads, ff, kv_heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.kv_heads, self.hd = kv_heads, d // heads

    def forward(self, input_ids, attention_mask, position_ids, *past):
        s = input_ids.shape[1]
        total = attention_mask.shape[1]
        q_pos = torch.arange(s) + (total - s)
        k_pos = torch.arange(total)
        causal = k_pos[None, :] <= q_pos[:, None]
        allowed = causal[None, None] & attention_mask[:, None, None, :].bool()
        x = self.tok(input_ids) + self.pos(position_ids)
        present = []
        for i, blk in enumerate(self.blocks):
            x, k, v = blk(x, allowed, past[2 * i], past[2 * i + 1])
            present += [k, v]
        logits = self.ln(x) @ self.tok.weight.t()
        return (logits, *present)

    def empty_past(self, b):
        return [torch.zeros(b, self.kv_heads, 0, self.hd) for _ in range(2 * len(self.blocks))]

    def lm(self, ids):
        b, s = ids.shape
        pos = torch.arange(s)[None].expand(b, s)
        return self(ids, torch.ones(b, s, dtype=torch.long), pos, *self.empty_past(b))[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('corpus')
    ap.add_argument('out')
    ap.add_argument('--minutes', type=float, default=20)
    ap.add_argument('--merges', type=int, default=1788)
    ap.add_argument('--seed', type=int, default=2002)
    ap.add_argument('--width', type=int, default=192)
    ap.add_argument('--layers', type=int, default=4)
    ap.add_argument('--heads', type=int, default=6)
    ap.add_argument('--kv-heads', type=int, default=1,
                    help='key/value heads (1: multi-query attention, the cache 6x smaller than --heads 6)')
    ap.add_argument('--untrained', action='store_true', help='export the initial weights at once (to time the graph)')
    ap.add_argument('--threads', type=int, default=1, help='torch threads (1 on a shared machine)')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    corpus = json.load(open(args.corpus))
    t0 = time.time()
    merges = learn_bpe(corpus['train'], args.merges)
    tok = Tokenizer(merges)
    print(f'bpe: {len(merges)} merges, vocab {len(tok.vocab)} in {time.time() - t0:.0f}s', flush=True)
    eot = tok.vocab['<|endoftext|>']
    stream = []
    for t in corpus['train']:
        stream += tok.encode(t) + [eot]
    data = torch.tensor(stream, dtype=torch.long)
    print(f'train tokens: {len(stream)} ({sum(len(t) for t in corpus["train"]) / len(stream):.2f} chars/token)', flush=True)

    cfg = dict(vocab=len(tok.vocab), d=args.width, layers=args.layers, heads=args.heads, ff=4 * args.width,
               positions=256, kv_heads=args.kv_heads)
    model = Decoder(**cfg)
    for n, p in model.named_parameters():
        if p.dim() == 2:
            nn.init.normal_(p, std=0.02)
    params = sum(p.numel() for p in model.parameters())
    print(f'parameters: {params}', flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.05)
    block, batch = 128, 24
    budget = 0 if args.untrained else args.minutes * 60
    start = time.time()
    step = 0
    running = None
    while True:
        frac = (time.time() - start) / budget if budget else 1
        if frac >= 1:
            break
        # Warm-up over the first 3% of the time budget, then cosine decay to a tenth.
        lr = 3e-3 * min(1.0, frac / 0.03) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g['lr'] = lr
        ix = torch.randint(len(data) - block - 1, (batch,))
        x = torch.stack([data[i:i + block] for i in ix])
        y = torch.stack([data[i + 1:i + block + 1] for i in ix])
        loss = F.cross_entropy(model.lm(x).reshape(-1, cfg['vocab']), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 50 == 0:
            print(f'step {step} ({frac * 100:.0f}% of budget): loss {running:.3f} lr {lr:.5f}', flush=True)
        step += 1
    model.eval()

    # Held-out: per token, and per ham-chat "byte" (a UTF-8 byte, a special token counting one), on the
    # held-out messages cut as ham-chat scores them, so the two models are compared on the same text.
    def score(texts):
        nats, tokens, nbytes = 0.0, 0, 0
        with torch.no_grad():
            for t in texts:
                ids = tok.encode(t)[:cfg['positions']]
                x = torch.tensor([ids])
                lp = model.lm(x)[0, :-1].log_softmax(-1)
                nats -= lp.gather(1, x[0, 1:, None]).sum().item()
                tokens += len(ids) - 1
                # Bytes of the text after the first token, specials counting one.
                rest = tok.decode(ids[1:])
                nbytes += sum(1 if p in SPECIALS else len(p.encode()) for p in SPECIAL_SPLIT.split(rest) if p)
        return nats, tokens, nbytes

    nats, tokens, _ = score(corpus['heldOut'])
    cut_nats, _, cut_bytes = score(corpus['heldOutCut'])
    result = {
        'steps': step,
        'minutes': round((time.time() - start) / 60, 1),
        'trainLoss': running,
        'heldOutLoss': nats / tokens,
        'heldOutPerplexity': math.exp(nats / tokens),
        'heldOutTokens': tokens,
        'natsPerByte': cut_nats / cut_bytes,
        'hamChatNatsPerByte': corpus['hamChat']['natsPerByte'],
        'parameters': params,
        'trainTokens': len(stream),
        **cfg,
    }
    print(json.dumps(result, indent=1), flush=True)

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, 'tokenizer.json'), 'w') as f:
        json.dump(tok.json(), f, ensure_ascii=False)
    names_in = ['input_ids', 'attention_mask', 'position_ids']
    names_out = ['logits']
    axes = {'input_ids': {0: 'batch_size', 1: 'sequence_length'},
            'attention_mask': {0: 'batch_size', 1: 'total_sequence_length'},
            'position_ids': {0: 'batch_size', 1: 'sequence_length'},
            'logits': {0: 'batch_size', 1: 'sequence_length'}}
    for i in range(cfg['layers']):
        for kind in ('key', 'value'):
            names_in.append(f'past_key_values.{i}.{kind}')
            names_out.append(f'present.{i}.{kind}')
            axes[f'past_key_values.{i}.{kind}'] = {0: 'batch_size', 2: 'past_sequence_length'}
            axes[f'present.{i}.{kind}'] = {0: 'batch_size', 2: 'total_sequence_length'}
    dummy = (torch.tensor([[5, 6]]), torch.ones(1, 5, dtype=torch.long), torch.tensor([[3, 4]]),
             *[torch.zeros(1, model.kv_heads, 3, model.hd) for _ in range(2 * cfg['layers'])])
    torch.onnx.export(model, dummy, os.path.join(args.out, 'model.onnx'), input_names=names_in,
                      output_names=names_out, dynamic_axes=axes, opset_version=14, do_constant_folding=True)

    def complete(prompt, n, temperature, seed):
        g = torch.Generator().manual_seed(seed)
        ids = tok.encode(prompt)
        with torch.no_grad():
            for _ in range(n):
                logits = model.lm(torch.tensor([ids[-cfg['positions']:]]))[0, -1]
                nxt = int(logits.argmax()) if temperature == 0 else int(
                    torch.multinomial((logits / temperature).softmax(-1), 1, generator=g))
                if nxt in (tok.vocab['<|end|>'], eot):
                    break
                ids.append(nxt)
        return tok.decode(ids[len(tok.encode(prompt)):])

    samples = []
    for subject in ['Meeting next week', 'Problem with my Linux install', 'Re: perl script question',
                    'Weekend plans']:
        prompt = f'<|user|>\n{subject}<|end|>\n<|assistant|>\n'
        samples.append({'subject': subject, 'greedy': complete(prompt, 60, 0, 0),
                        'sampled': complete(prompt, 60, 0.8, 1)})
    result['samples'] = samples
    with open(os.path.join(args.out, 'training.json'), 'w') as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
    print(json.dumps(samples, indent=1, ensure_ascii=False))


if __name__ == '__main__':
    main()
