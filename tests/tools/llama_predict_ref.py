#!/usr/bin/python3
"""llama_predict_ref: random Llama-family models with real tokenizers, and
the next-token log-probabilities an independent PyTorch implementation
(llama_torch.py, float64 from the stored weights) gives them: the
reference of tests/cli/t93-llama-predict.sh for `stamp predict --json`.
Needs Debian's python3-torch (/usr/bin/python3).

    llama_predict_ref.py model --arch ARCH --dtype BF16|F16|F32 --out DIR
        --tokenizer tokenizer.json [--shards N] [--tied] [--qkv-bias]
        [--rope-llama3 ORIG_MAX_POS] [--theta T] [--hidden C] [--ff F]
        [--layers L] [--heads NH] [--kv-heads NKV] [--head-dim D]
        [--vocab-size V] [--seed S]
      writes DIR: config.json, the weights (one file, or N shards and
      model.safetensors.index.json), tokenizer.json (and the
      tokenizer_config.json beside it, when there is one). vocab_size is
      the tokenizer's (its largest id + 1) unless --vocab-size asks for
      more, as real Qwen models pad theirs. The embeddings and lm_head
      have standard deviation 1, so that the top of a 100k-token
      distribution is spread over nats, not a flat plateau. Prints the
      rope frequency bands (high, medium, low) with --rope-llama3.

    llama_predict_ref.py logprobs DIR [--top K] ID...
      prints {"tokens": [ids], "top": [{"id", "logprob"}, ...]}: the
      log-softmax at the last position, the K best (default: all).

    llama_predict_ref.py check DIR CASES.json [--tol 1e-4]
      CASES.json: an array of `stamp predict --json` outputs ({"tokens",
      "top": [{"id", "logprob"}]}, optionally "prompt"). For each case the
      reference runs the same token ids and reports max_abs_diff (the
      largest |stamp - torch| over stamp's listed ids), same_ids (stamp's
      ids are torch's top K, except ids tied with torch's K-th within
      tol), top1_same (stamp's first is torch's, or torch's first two are
      within tol of each other) and torch's top 3; then the totals:
      {"cases": [...], "max_abs_diff", "all_ok"}. all_ok: every case
      has same_ids, top1_same and max_abs_diff <= tol.

    llama_predict_ref.py batch FILE
      runs each line of FILE (or stdin for -) as the arguments of one of
      the commands above (shell quoting), in this one process: torch's
      import costs seconds. logprobs and check take -o FILE (default:
      stdout) for their output.
"""
import argparse
import json
import os
import shlex
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_torch import (config_json, forward, load_model,  # noqa: E402
                         make_weights, rope_bands, write_weights)

MODEL_TYPE = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral",
              "Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3"}


def tokenizer_ids(path):
    """(vocab size the tokenizer needs, {token text: id} of its added
    tokens)."""
    with open(path, encoding="utf-8") as f:
        t = json.load(f)
    top = max(t["model"]["vocab"].values())
    added = {a["content"]: a["id"] for a in t.get("added_tokens") or []}
    if added:
        top = max(top, max(added.values()))
    return top + 1, added


def cmd_model(a):
    need, added = tokenizer_ids(a.tokenizer)
    V = a.vocab_size or need
    if V < need:
        sys.exit("llama_predict_ref: --vocab-size %d is below the "
                 "tokenizer's %d" % (V, need))
    first = lambda names, d: next((added[n] for n in names if n in added), d)
    bos = first(["<s>", "<|begin_of_text|>", "<|endoftext|>"], 1)
    eos = first(["</s>", "<|end_of_text|>", "<|im_end|>", "<|endoftext|>"], 2)
    rs = None
    if a.rope_llama3:
        rs = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
              "high_freq_factor": 4.0,
              "original_max_position_embeddings": a.rope_llama3}
    cfg = dict(arch=a.arch, model_type=MODEL_TYPE[a.arch], dtype=a.dtype,
               shards=a.shards, tied=a.tied, L=a.layers, C=a.hidden, F=a.ff,
               NH=a.heads, NKV=a.kv_heads or a.heads,
               D=a.head_dim or a.hidden // a.heads, V=V, theta=a.theta,
               rope_scaling=rs, eps=1e-5 if "Llama" in a.arch else 1e-6,
               qkv_bias=a.qkv_bias, qk_norm=a.arch == "Qwen3ForCausalLM",
               sliding_window=4096, max_pos=512, bos=bos, eos=eos,
               eos_list=[eos], embed_std=1.0, head_std=1.0)
    if a.arch == "Qwen2ForCausalLM" and cfg["D"] * a.heads != a.hidden:
        sys.exit("llama_predict_ref: Qwen2's config has no head_dim: "
                 "--head-dim must be hidden / heads")
    os.makedirs(a.out, exist_ok=True)
    gen = torch.Generator().manual_seed(a.seed)
    p = make_weights(cfg, gen)
    write_weights(a.out, p, a.dtype, a.shards)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config_json(cfg), f, indent=2)
        f.write("\n")
    shutil.copyfile(a.tokenizer, os.path.join(a.out, "tokenizer.json"))
    tc = os.path.join(os.path.dirname(a.tokenizer), "tokenizer_config.json")
    if os.path.exists(tc):
        shutil.copyfile(tc, os.path.join(a.out, "tokenizer_config.json"))
    print("wrote %s: %s %s, %d shard(s), vocab %d, %d parameters%s" % (
        a.out, a.arch, a.dtype, a.shards, V,
        sum(t.numel() for t in p.values()),
        ", rope bands (high, medium, low) %s" % (rope_bands(cfg),)
        if rs else ""))


def last_logprobs(cfg, p, tokens):
    if not tokens:
        raise ValueError("no tokens")
    bad = [t for t in tokens if not 0 <= t < cfg["V"]]
    if bad:
        raise ValueError("token ids %s outside the vocabulary of %d" %
                         (bad, cfg["V"]))
    return forward(cfg, p, tokens)[-1]


def cmd_logprobs(a):
    cfg, p = load_model(a.dir)
    lp = last_logprobs(cfg, p, a.ids)
    k = a.top or cfg["V"]
    vals, ids = torch.topk(lp, k)
    emit(a, json.dumps({"tokens": a.ids, "top": [
        {"id": int(i), "logprob": float(v)}
        for v, i in zip(vals.tolist(), ids.tolist())]}))


def check_case(cfg, p, case, tol):
    lp = last_logprobs(cfg, p, case["tokens"])
    stamp = [(t["id"], t["logprob"]) for t in case["top"]]
    K = len(stamp)
    vals, ids = torch.topk(lp, min(K + 1, cfg["V"]))
    vals, ids = vals.tolist(), ids.tolist()
    diffs = [abs(v - float(lp[i])) for i, v in stamp]
    kth = vals[K - 1]
    S, T = {i for i, _ in stamp}, set(ids[:K])
    # an id may swap with another only when torch has them tied within tol
    same_ids = len(S) == K and all(abs(float(lp[i]) - kth) <= tol
                                   for i in S ^ T)
    top1_same = stamp[0][0] == ids[0] or vals[0] - vals[1] < tol
    return {"prompt": case.get("prompt"), "n_tokens": len(case["tokens"]),
            "max_abs_diff": max(diffs), "same_ids": same_ids,
            "top1_same": top1_same, "top1_stamp": stamp[0][0],
            "top1_torch": ids[0],
            "torch_top3": [[i, round(v, 6)] for i, v in zip(ids, vals)][:3],
            "torch_gap_1_2": vals[0] - vals[1] if len(vals) > 1 else None,
            "torch_gap_K_K1": kth - vals[K] if len(vals) > K else None}


def emit(a, text):
    if a.o:
        with open(a.o, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        print(text)


def cmd_check(a):
    cfg, p = load_model(a.dir)
    with open(a.cases, encoding="utf-8") as f:
        cases = json.load(f)
    out = [check_case(cfg, p, c, a.tol) for c in cases]
    worst = max((c["max_abs_diff"] for c in out), default=float("inf"))
    ok = bool(out) and all(c["same_ids"] and c["top1_same"] and
                           c["max_abs_diff"] <= a.tol for c in out)
    emit(a, json.dumps({"model": a.dir, "tol": a.tol, "max_abs_diff": worst,
                        "all_ok": ok, "cases": out}, indent=1))


def parser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("model")
    m.add_argument("--arch", required=True, choices=sorted(MODEL_TYPE))
    m.add_argument("--dtype", required=True, choices=["BF16", "F16", "F32"])
    m.add_argument("--out", required=True)
    m.add_argument("--tokenizer", required=True)
    m.add_argument("--shards", type=int, default=1)
    m.add_argument("--tied", action="store_true")
    m.add_argument("--qkv-bias", action="store_true")
    m.add_argument("--rope-llama3", type=int, default=0)
    m.add_argument("--theta", type=float, default=10000.0)
    m.add_argument("--hidden", type=int, default=32)
    m.add_argument("--ff", type=int, default=64)
    m.add_argument("--layers", type=int, default=2)
    m.add_argument("--heads", type=int, default=2)
    m.add_argument("--kv-heads", type=int, default=0)
    m.add_argument("--head-dim", type=int, default=0)
    m.add_argument("--vocab-size", type=int, default=0)
    m.add_argument("--seed", type=int, default=1)
    lp = sub.add_parser("logprobs")
    lp.add_argument("dir")
    lp.add_argument("--top", type=int, default=0)
    lp.add_argument("-o", default="")
    lp.add_argument("ids", type=int, nargs="+")
    c = sub.add_parser("check")
    c.add_argument("dir")
    c.add_argument("cases")
    c.add_argument("--tol", type=float, default=1e-4)
    c.add_argument("-o", default="")
    b = sub.add_parser("batch")
    b.add_argument("file")
    return ap


def run(argv):
    a = parser().parse_args(argv)
    if a.cmd == "batch":
        f = sys.stdin if a.file == "-" else open(a.file, encoding="utf-8")
        for line in f:
            if line.strip() and not line.lstrip().startswith("#"):
                args = shlex.split(line)
                if args[0] == "batch":
                    sys.exit("llama_predict_ref: batch inside batch")
                run(args)
        return
    {"model": cmd_model, "logprobs": cmd_logprobs, "check": cmd_check}[a.cmd](a)


def main():
    run(sys.argv[1:])


if __name__ == "__main__":
    main()
