#!/usr/bin/python3
"""Trains the `spam-transformer` example: a small BERT-style encoder that classifies e-mails as ham or spam.

Where data scientists train: PyTorch (Debian's python3-torch), then torch.onnx.export with Hugging Face input
names and dynamic batch / sequence axes. The script also builds the WordPiece tokenizer from the training texts
and writes it as a Hugging Face `tokenizer.json`, so Ferry's tokenizer step (and the browser) encode text exactly
as training did.

Inputs: the SpamAssassin corpus with the `spam` example's split, exported by
    node examples/dist/spam-transformer/corpus-export.js /tmp/corpus.jsonl
Run:
    /usr/bin/python3 examples/src/spam-transformer/train.py /tmp/corpus.jsonl OUT_DIR
Writes OUT_DIR/model.onnx, tokenizer.json, config.json, pytorch-outputs.json (held-out logits and the reference
cases the tests replay without Python). `node examples/dist/spam-transformer/finish.js` then checks ONNX Runtime
against PyTorch and writes ferry.yaml and card.md.
"""
import collections
import json
import math
import os
import random
import sys
import time
import unicodedata

import torch
from torch import nn

torch.set_num_threads(1)
torch.manual_seed(17)
random.seed(17)

MAX_LEN = 128
VOCAB_WORDS = 6000
VOCAB_PIECES = 2000
MIN_CHAR_COUNT = 5
SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
HIDDEN, LAYERS, HEADS, FFN = 96, 2, 4, 192
EPOCHS, BATCH, LR = 6, 32, 1e-3
# `--shape HIDDEN,LAYERS,HEADS,FFN,EPOCHS,LR` trains another size with the same data, tokenizer and recipe
# (e.g. --shape 384,4,6,1536,4,5e-4; TORCH_THREADS sets torch's threads). Install Debian's
# libopenblas0-pthread first: without it Debian's torch runs the reference BLAS, many times slower.
if '--shape' in sys.argv:
    _v = sys.argv[sys.argv.index('--shape') + 1].split(',')
    HIDDEN, LAYERS, HEADS, FFN, EPOCHS = (int(x) for x in _v[:5])
    LR = float(_v[5])
    torch.set_num_threads(int(os.environ.get('TORCH_THREADS', '1')))

# ------------------------------------------------------------------------------------------------
# Text normalisation and pre-tokenisation, written to match the Hugging Face components named in
# tokenizer.json (BertNormalizer with lowercase + strip_accents + clean_text + handle_chinese_chars,
# BertPreTokenizer). finish.ts re-encodes every held-out text with Ferry's tokenizer step and fails
# when any id differs, so a divergence here cannot go unnoticed.

JS_SPACE = set('\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff') | {chr(c) for c in range(0x2000, 0x200B)}


def is_control(ch):
    if ch in '\t\n\r':
        return False
    return unicodedata.category(ch) in ('Cc', 'Cf', 'Co', 'Cs')


def is_chinese(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF)


def normalize(text):
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or is_control(ch):
            continue
        out.append(' ' if ch in JS_SPACE else ch)
    text = ''.join(f' {c} ' if is_chinese(ord(c)) else c for c in out)
    text = text.lower()
    text = unicodedata.normalize('NFD', text)
    return ''.join(c for c in text if unicodedata.category(c) != 'Mn')


def is_punct(ch):
    cp = ord(ch)
    if 0x21 <= cp <= 0x2F or 0x3A <= cp <= 0x40 or 0x5B <= cp <= 0x60 or 0x7B <= cp <= 0x7E:
        return True
    return unicodedata.category(ch).startswith('P')


def words(text):
    """BertPreTokenizer: runs of non-space non-punctuation, and each punctuation character alone."""
    cur = []
    for ch in normalize(text):
        if ch in JS_SPACE:
            if cur:
                yield ''.join(cur)
                cur = []
        elif is_punct(ch):
            if cur:
                yield ''.join(cur)
                cur = []
            yield ch
        else:
            cur.append(ch)
    if cur:
        yield ''.join(cur)


def wordpiece(word, vocab):
    if len(word) > 100:
        return ['[UNK]']
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        found = None
        while start < end:
            sub = word[start:end] if start == 0 else '##' + word[start:end]
            if sub in vocab:
                found = sub
                break
            end -= 1
        if found is None:
            return ['[UNK]']
        pieces.append(found)
        start = end
    return pieces


def encode(text, vocab, max_len=MAX_LEN):
    """[CLS] + the first max_len - 2 word pieces + [SEP], as ids (truncation longest_first on one text)."""
    ids = [vocab['[CLS]']]
    for w in words(text):
        for p in wordpiece(w, vocab):
            if len(ids) == max_len - 1:
                break
            ids.append(vocab[p])
        if len(ids) == max_len - 1:
            break
    ids.append(vocab['[SEP]'])
    return ids


def build_vocab(texts):
    word_counts = collections.Counter()
    for t in texts:
        for i, w in enumerate(words(t[:4000])):
            word_counts[w] += 1
    char_counts = collections.Counter()
    for w, n in word_counts.items():
        for c in w:
            char_counts[c] += n
    chars = sorted(c for c, n in char_counts.items() if n >= MIN_CHAR_COUNT)
    vocab_list = list(SPECIALS) + chars + ['##' + c for c in chars]
    seen = set(vocab_list)
    for w, _ in word_counts.most_common():
        if len([x for x in vocab_list if not x.startswith('##')]) >= VOCAB_WORDS + len(SPECIALS) + len(chars):
            break
        if w not in seen:
            vocab_list.append(w)
            seen.add(w)
    # Sub-word pieces for the words left out: frequent prefixes and word-internal pieces.
    pieces = collections.Counter()
    for w, n in word_counts.items():
        if w in seen or len(w) > 30:
            continue
        for k in range(2, min(len(w), 8) + 1):
            pieces[w[:k]] += n * (k - 1)
        for s in range(1, len(w)):
            for k in range(2, min(len(w) - s, 6) + 1):
                pieces['##' + w[s:s + k]] += n * (k - 1)
    added = 0
    for p, _ in pieces.most_common():
        if added >= VOCAB_PIECES:
            break
        if p not in seen:
            vocab_list.append(p)
            seen.add(p)
            added += 1
    return {tok: i for i, tok in enumerate(vocab_list)}


def tokenizer_json(vocab):
    special = [{'id': vocab[t], 'content': t, 'single_word': False, 'lstrip': False, 'rstrip': False,
                'normalized': False, 'special': True} for t in SPECIALS]
    return {
        'version': '1.0',
        'truncation': {'direction': 'Right', 'max_length': MAX_LEN, 'strategy': 'LongestFirst', 'stride': 0},
        'padding': None,
        'added_tokens': special,
        'normalizer': {'type': 'BertNormalizer', 'clean_text': True, 'handle_chinese_chars': True,
                       'strip_accents': None, 'lowercase': True},
        'pre_tokenizer': {'type': 'BertPreTokenizer'},
        'post_processor': {
            'type': 'TemplateProcessing',
            'single': [{'SpecialToken': {'id': '[CLS]', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}},
                       {'SpecialToken': {'id': '[SEP]', 'type_id': 0}}],
            'pair': [{'SpecialToken': {'id': '[CLS]', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}},
                     {'SpecialToken': {'id': '[SEP]', 'type_id': 0}}, {'Sequence': {'id': 'B', 'type_id': 1}},
                     {'SpecialToken': {'id': '[SEP]', 'type_id': 1}}],
            'special_tokens': {t: {'id': t, 'ids': [vocab[t]], 'tokens': [t]} for t in ('[CLS]', '[SEP]')},
        },
        'decoder': {'type': 'WordPiece', 'prefix': '##', 'cleanup': True},
        'model': {'type': 'WordPiece', 'unk_token': '[UNK]', 'continuing_subword_prefix': '##',
                  'max_input_chars_per_word': 100, 'vocab': vocab},
    }


# ------------------------------------------------------------------------------------------------
# The model: a BERT-style encoder (token + position + segment embeddings, post-LN blocks) with a
# classification head on the masked mean of the last hidden states.

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(HIDDEN, 3 * HIDDEN)
        self.out = nn.Linear(HIDDEN, HIDDEN)
        self.ln1 = nn.LayerNorm(HIDDEN)
        self.ff1 = nn.Linear(HIDDEN, FFN)
        self.ff2 = nn.Linear(FFN, HIDDEN)
        self.ln2 = nn.LayerNorm(HIDDEN)
        self.drop = nn.Dropout(0.1)

    def forward(self, x, bias):
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, HEADS, HIDDEN // HEADS).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(HIDDEN // HEADS) + bias
        att = torch.softmax(scores, dim=-1) @ v
        x = self.ln1(x + self.drop(self.out(att.transpose(1, 2).reshape(b, n, HIDDEN))))
        return self.ln2(x + self.drop(self.ff2(torch.nn.functional.gelu(self.ff1(x)))))


class SpamEncoder(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, HIDDEN)
        self.pos = nn.Embedding(MAX_LEN, HIDDEN)
        self.seg = nn.Embedding(2, HIDDEN)
        self.ln = nn.LayerNorm(HIDDEN)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.head = nn.Linear(HIDDEN, 2)
        self.drop = nn.Dropout(0.1)

    def forward(self, input_ids, attention_mask, token_type_ids):
        n = input_ids.shape[1]
        positions = torch.arange(n, device=input_ids.device).unsqueeze(0)
        x = self.drop(self.ln(self.tok(input_ids) + self.pos(positions) + self.seg(token_type_ids)))
        mask = attention_mask.to(x.dtype)
        bias = (1.0 - mask)[:, None, None, :] * -1e9
        for blk in self.blocks:
            x = blk(x, bias)
        pooled = (x * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        return self.head(pooled), x


def batch_tensors(seqs):
    n = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), n, dtype=torch.long)
    mask = torch.zeros(len(seqs), n, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return ids, mask, torch.zeros_like(ids)


def metrics(pred, gold):
    tp = sum(1 for p, g in zip(pred, gold) if p == 1 and g == 1)
    fp = sum(1 for p, g in zip(pred, gold) if p == 1 and g == 0)
    fn = sum(1 for p, g in zip(pred, gold) if p == 0 and g == 1)
    acc = sum(1 for p, g in zip(pred, gold) if p == g) / len(gold)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {'accuracy': acc, 'precision': prec, 'recall': rec, 'f1': f1}


def logits_of(model, seqs):
    out = []
    model.eval()
    with torch.no_grad():
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        res = [None] * len(seqs)
        for s in range(0, len(order), 64):
            idx = order[s:s + 64]
            logits, _ = model(*batch_tensors([seqs[i] for i in idx]))
            for k, i in enumerate(idx):
                res[i] = logits[k].tolist()
        out = res
    return out


def reference_cases(model, vocab, held):
    """Held-out texts cut to 1..126 word pieces (3..128 tokens with [CLS] and [SEP]) and the first 20 held-out
    messages, each run alone through the PyTorch module (no padding): what Ferry must reproduce when it pads them
    into batches."""
    model.eval()
    cases = []
    lengths = [1, 2, 3, 5, 8, 13, 21, 34, 55, 80, 105, 126]
    pool = [r for r in held if len(encode(r['text'], vocab)) >= 128][:60]
    for k, n_pieces in enumerate(lengths):
        ws = list(words(pool[k]['text']))
        # The shortest prefix of the message (in words, re-joined with spaces) with at least n_pieces pieces.
        for j in range(1, len(ws) + 1):
            candidate = ' '.join(ws[:j])
            if len(encode(candidate, vocab)) - 2 >= n_pieces:
                cases.append(candidate)
                break
    parity = [r['text'][:2000] for r in held[:20]]
    with torch.no_grad():
        def alone(text):
            ids = encode(text, vocab)
            logits, hidden = model(*batch_tensors([ids]))
            return {'text': text, 'inputIds': ids, 'logits': logits[0].tolist(),
                    'meanEmbedding': hidden[0].mean(0).tolist()}
        return [alone(t) for t in cases], [alone(t) for t in parity]


def load_exported(out_dir):
    """The PyTorch module with the weights of an earlier export (model.onnx + tokenizer.json in out_dir): the
    initialisers keep the parameter names, except Linear weights, stored transposed as the B input of the
    MatMul node named after the module."""
    import onnx
    from onnx import numpy_helper
    vocab = json.load(open(f'{out_dir}/tokenizer.json', encoding='utf-8'))['model']['vocab']
    graph = onnx.load(f'{out_dir}/model.onnx').graph
    inits = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    matmul_b = {n.name.lstrip('/').replace('/', '.'): n.input[1] for n in graph.node if n.op_type == 'MatMul'}
    model = SpamEncoder(len(vocab))
    state = {}
    for name, p in model.state_dict().items():
        if name in inits:
            state[name] = inits[name]
        else:
            module = name.rsplit('.', 1)[0]
            state[name] = inits[matmul_b[module + '.MatMul']].t()
        assert state[name].shape == p.shape, name
    model.load_state_dict(state)
    return model, vocab


def main():
    corpus_path, out_dir = sys.argv[1], sys.argv[2]
    rows = [json.loads(line) for line in open(corpus_path, encoding='utf-8')]
    train = [r for r in rows if r['split'] == 'train']
    held = [r for r in rows if r['split'] == 'heldOut']
    if '--cases-only' in sys.argv:
        # Recompute the reference cases from an earlier export without retraining.
        model, vocab = load_exported(out_dir)
        case_out, parity_out = reference_cases(model, vocab, held)
        path = f'{out_dir}/pytorch-outputs.json'
        outputs = json.load(open(path, encoding='utf-8'))
        outputs.update({'cases': case_out, 'parity': parity_out})
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(outputs, f)
        print(f'{len(case_out)} cases, {len(parity_out)} parity texts written to {path}')
        return
    t0 = time.time()
    vocab = build_vocab([r['text'] for r in train])
    print(f'vocab {len(vocab)} tokens ({time.time() - t0:.0f}s)', flush=True)
    train_ids = [encode(r['text'], vocab) for r in train]
    held_ids = [encode(r['text'], vocab) for r in held]
    print(f'encoded ({time.time() - t0:.0f}s); mean length {sum(map(len, train_ids)) / len(train_ids):.0f}', flush=True)
    y_train = [1 if r['label'] == 'spam' else 0 for r in train]
    y_held = [1 if r['label'] == 'spam' else 0 for r in held]

    model = SpamEncoder(len(vocab))
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    steps = EPOCHS * math.ceil(len(train_ids) / BATCH)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps, pct_start=0.1)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    for epoch in range(EPOCHS):
        model.train()
        order = list(range(len(train_ids)))
        random.shuffle(order)
        total = 0.0
        for s in range(0, len(order), BATCH):
            idx = order[s:s + BATCH]
            logits, _ = model(*batch_tensors([train_ids[i] for i in idx]))
            loss = loss_fn(logits, torch.tensor([y_train[i] for i in idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        held_logits = logits_of(model, held_ids)
        m = metrics([int(l[1] > l[0]) for l in held_logits], y_held)
        history.append({'epoch': epoch + 1, 'trainLoss': total / len(order), **m})
        print(f'epoch {epoch + 1}: loss {total / len(order):.4f} held-out acc {m["accuracy"]:.4f} '
              f'f1 {m["f1"]:.4f} ({time.time() - t0:.0f}s)', flush=True)

    model.eval()
    held_logits = logits_of(model, held_ids)
    final = metrics([int(l[1] > l[0]) for l in held_logits], y_held)

    case_out, parity_out = reference_cases(model, vocab, held)

    dummy = batch_tensors([encode('hello world', vocab), encode('a longer hello to the world', vocab)])
    torch.onnx.export(
        model, dummy, f'{out_dir}/model.onnx', opset_version=14,
        input_names=['input_ids', 'attention_mask', 'token_type_ids'],
        output_names=['logits', 'last_hidden_state'],
        dynamic_axes={'input_ids': {0: 'batch', 1: 'sequence'}, 'attention_mask': {0: 'batch', 1: 'sequence'},
                      'token_type_ids': {0: 'batch', 1: 'sequence'}, 'logits': {0: 'batch'},
                      'last_hidden_state': {0: 'batch', 1: 'sequence'}},
    )
    with open(f'{out_dir}/tokenizer.json', 'w', encoding='utf-8') as f:
        json.dump(tokenizer_json(vocab), f, ensure_ascii=False)
    config = {
        'architectures': ['SpamEncoderForSequenceClassification'], 'model_type': 'bert',
        'vocab_size': len(vocab), 'hidden_size': HIDDEN, 'num_hidden_layers': LAYERS,
        'num_attention_heads': HEADS, 'intermediate_size': FFN, 'max_position_embeddings': MAX_LEN,
        'type_vocab_size': 2, 'pad_token_id': 0, 'id2label': {'0': 'ham', '1': 'spam'},
        'label2id': {'ham': 0, 'spam': 1},
    }
    with open(f'{out_dir}/config.json', 'w', encoding='utf-8') as f:
        json.dump(config, f, indent=2)
    params = sum(p.numel() for p in model.parameters())
    with open(f'{out_dir}/pytorch-outputs.json', 'w', encoding='utf-8') as f:
        json.dump({
            'torch': torch.__version__, 'parameters': params, 'trainSeconds': round(time.time() - t0),
            'hyper': {'hidden': HIDDEN, 'layers': LAYERS, 'heads': HEADS, 'ffn': FFN, 'epochs': EPOCHS,
                      'batch': BATCH, 'lr': LR, 'maxLength': MAX_LEN},
            'history': history, 'heldOut': final,
            'heldOutIds': [r['id'] for r in held], 'heldOutLogits': held_logits,
            'heldOutInputIds': held_ids,
            'cases': case_out, 'parity': parity_out,
        }, f)
    print(json.dumps(final), flush=True)


if __name__ == '__main__':
    main()
