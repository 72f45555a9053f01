#!/usr/bin/python3
"""gen_gpt2_golden: writes tests/data/gpt2-tiny, a tiny random GPT-2 in
Hugging Face's layout, and the log-probabilities PyTorch computes for it.

Run once by hand from the repository root (Debian's python3-torch):

    /usr/bin/python3 tests/tools/gen_gpt2_golden.py

It writes config.json, model.safetensors (written here with struct/json:
an 8-byte little-endian header length, the JSON header, the F32 data),
vocab.json + merges.txt (a byte-level BPE vocabulary: GPT-2's 256 byte
tokens, a few merges learnt from a small text, <|endoftext|>), and
golden.json: for a few token sequences, the log-softmax of the logits at
every position, computed in float64 from the float32 weights (the first
sequence is the BPE encoding of a prompt, whose top 5 next tokens also go
to predict-golden.txt for the command test).

The GPT-2 math is written out here in plain torch (no transformers):
Conv1D weights in [in, out] orientation, pre-LayerNorm blocks, causal
attention, GELU in its tanh form (gelu_new), lm_head tied to wte. The
file deliberately uses the hub's unprefixed names ("h.0.ln_1.weight") and
keeps the attn.bias mask buffers the old checkpoints carry, so the C
loader's handling of both is exercised; the C side saves with the
"transformer." prefix.
"""
import json
import math
import os
import re
import struct

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                   "gpt2-tiny")
N_LAYER, N_HEAD, N_EMBD, N_POS = 2, 2, 16, 16
N_MERGES = 43
SEED = 20240601
CORPUS = ("The capital of France is Paris. The capital of Italy is Rome. "
          "The cat sat on the mat. The mother tongue of Danielle Darrieux "
          "is French. The Eiffel Tower is in Paris. the the the cat")


def bytes_to_unicode():
    """GPT-2's map from bytes to printable characters (encoder.py)."""
    bs = (list(range(ord("!"), ord("~") + 1)) +
          list(range(ord("¡"), ord("¬") + 1)) +
          list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def train_bpe(text, n_merges):
    """Plain BPE on GPT-2-style pieces; returns the ranked merges."""
    b2u = bytes_to_unicode()
    pieces = re.findall(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+", text)
    words = [[b2u[b] for b in p.encode("utf-8")] for p in pieces]
    merges = []
    for _ in range(n_merges):
        counts = {}
        for w in words:
            for a, b in zip(w, w[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + 1
        if not counts:
            break
        best = max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        for w in words:
            i = 0
            while i < len(w) - 1:
                if (w[i], w[i + 1]) == best:
                    w[i:i + 2] = [w[i] + w[i + 1]]
                else:
                    i += 1
    return merges


def bpe_encode(text, merges, vocab):
    """GPT-2's encoding (encoder.py's bpe) for ASCII text: split with the
    pattern, then repeatedly merge every occurrence of the best-ranked
    adjacent pair."""
    b2u = bytes_to_unicode()
    ranks = {m: i for i, m in enumerate(merges)}
    pat = (r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+"
           r"|\s+(?!\S)|\s+")
    ids = []
    for piece in re.findall(pat, text):
        word = [b2u[b] for b in piece.encode("utf-8")]
        while len(word) > 1:
            rank, pair = min((ranks.get(p, math.inf), p)
                             for p in zip(word, word[1:]))
            if rank == math.inf:
                break
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        ids += [vocab[t] for t in word]
    return ids


def write_safetensors(path, tensors):
    """tensors: list of (name, float32 tensor)."""
    header, offset, blobs = {}, 0, []
    for name, t in tensors:
        data = t.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def layernorm(x, w, b, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) *
                                       (x + 0.044715 * x ** 3)))


def forward(p, tokens):
    """Log-probabilities (T, V) of one sequence, in float64."""
    T = len(tokens)
    C, NH = N_EMBD, N_HEAD
    hs = C // NH
    idx = torch.tensor(tokens)
    x = p["wte.weight"][idx] + p["wpe.weight"][:T]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(N_LAYER):
        g = lambda n: p["h.%d.%s" % (l, n)]
        h = layernorm(x, g("ln_1.weight"), g("ln_1.bias"))
        qkv = h @ g("attn.c_attn.weight") + g("attn.c_attn.bias")
        q, k, v = qkv.split(C, dim=-1)
        q = q.view(T, NH, hs).transpose(0, 1)
        k = k.view(T, NH, hs).transpose(0, 1)
        v = v.view(T, NH, hs).transpose(0, 1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hs)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(0, 1).reshape(T, C)
        x = x + y @ g("attn.c_proj.weight") + g("attn.c_proj.bias")
        h = layernorm(x, g("ln_2.weight"), g("ln_2.bias"))
        h = gelu_tanh(h @ g("mlp.c_fc.weight") + g("mlp.c_fc.bias"))
        x = x + h @ g("mlp.c_proj.weight") + g("mlp.c_proj.bias")
    x = layernorm(x, p["ln_f.weight"], p["ln_f.bias"])
    logits = x @ p["wte.weight"].T
    return torch.log_softmax(logits, dim=-1)


def main():
    os.makedirs(OUT, exist_ok=True)
    b2u = bytes_to_unicode()
    merges = train_bpe(CORPUS, N_MERGES)
    vocab = {b2u[b]: i for i, b in enumerate(b2u)}  # GPT-2's byte order
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    V = len(vocab)
    with open(os.path.join(OUT, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(OUT, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write("%s %s\n" % (a, b))

    C, F = N_EMBD, 4 * N_EMBD
    gen = torch.Generator().manual_seed(SEED)
    rnd = lambda *shape, std=0.3: torch.randn(*shape, generator=gen) * std
    # Larger than GPT-2's 0.02 so that every part of the network matters.
    p = {"wte.weight": rnd(V, C, std=0.5), "wpe.weight": rnd(N_POS, C)}
    names = ["wte.weight", "wpe.weight"]
    for l in range(N_LAYER):
        layer = {
            "ln_1.weight": 1.0 + rnd(C, std=0.1), "ln_1.bias": rnd(C, std=0.1),
            "attn.c_attn.weight": rnd(C, 3 * C, std=0.4),
            "attn.c_attn.bias": rnd(3 * C, std=0.1),
            "attn.c_proj.weight": rnd(C, C), "attn.c_proj.bias": rnd(C, std=0.1),
            "ln_2.weight": 1.0 + rnd(C, std=0.1), "ln_2.bias": rnd(C, std=0.1),
            "mlp.c_fc.weight": rnd(C, F), "mlp.c_fc.bias": rnd(F, std=0.1),
            "mlp.c_proj.weight": rnd(F, C, std=0.2),
            "mlp.c_proj.bias": rnd(C, std=0.1),
        }
        for n, t in layer.items():
            p["h.%d.%s" % (l, n)] = t
            names.append("h.%d.%s" % (l, n))
    p["ln_f.weight"] = 1.0 + rnd(C, std=0.1)
    p["ln_f.bias"] = rnd(C, std=0.1)
    names += ["ln_f.weight", "ln_f.bias"]
    p = {n: t.to(torch.float32) for n, t in p.items()}

    tensors = []
    for n in names:
        tensors.append((n, p[n]))
        if n.endswith("ln_1.weight"):  # the old checkpoints' mask buffer
            mask = torch.tril(torch.ones(N_POS, N_POS)).view(1, 1, N_POS, N_POS)
            tensors.append((n.replace("ln_1.weight", "attn.bias"), mask))
    write_safetensors(os.path.join(OUT, "model.safetensors"), tensors)

    config = {
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1, "bos_token_id": V - 1, "embd_pdrop": 0.1,
        "eos_token_id": V - 1, "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": N_POS,
        "n_embd": C, "n_head": N_HEAD, "n_inner": None, "n_layer": N_LAYER,
        "n_positions": N_POS, "resid_pdrop": 0.1, "vocab_size": V,
    }
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")

    pd = {n: t.to(torch.float64) for n, t in p.items()}
    seq_gen = torch.Generator().manual_seed(SEED + 1)
    prompt = "The cat sat on the"
    seqs = [bpe_encode(prompt, merges, vocab),
            torch.randint(0, V, (9,), generator=seq_gen).tolist(),
            torch.randint(0, V, (N_POS,), generator=seq_gen).tolist()]
    golden = {"note": "log-softmax of the logits at every position, float64 "
                      "torch reference; written by tests/tools/"
                      "gen_gpt2_golden.py",
              "vocab_size": V, "sequences": []}
    for s in seqs:
        lp = forward(pd, s)
        golden["sequences"].append({
            "tokens": s,
            "logprobs": [[float("%.6f" % x) for x in row] for row in lp.tolist()],
        })
    # the expected output of `stamp predict` for the prompt (t10-predict.sh)
    last = golden["sequences"][0]["logprobs"][-1]
    top = sorted(range(V), key=lambda v: (-last[v], v))[:5]
    with open(os.path.join(OUT, "predict-golden.txt"), "w") as f:
        f.write("# stamp predict --model tests/data/gpt2-tiny '%s': the "
                "prompt's ids, then the top 5 (id, logprob); torch float64\n"
                % prompt)
        f.write("tokens %s\n" % " ".join(map(str, seqs[0])))
        for v in top:
            f.write("%d %.6f\n" % (v, last[v]))
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")
    print("wrote %s: V=%d, %d parameters" %
          (OUT, V, sum(t.numel() for t in p.values())))


if __name__ == "__main__":
    main()
