#!/usr/bin/python3
"""gen_llama_golden: writes four small random models of the Llama family
in Hugging Face's layout under tests/data/, and the log-probabilities an
independent PyTorch implementation computes for them.

Run once by hand from the repository root (Debian's python3-torch):

    /usr/bin/python3 tests/tools/gen_llama_golden.py

    llama-bf16-sharded  LlamaForCausalLM, BF16, three shards and
                        model.safetensors.index.json, rope_scaling llama3
                        (small original_max_position_embeddings so that
                        all three of its frequency bands occur), tied
                        embeddings
    qwen2-f16           Qwen2ForCausalLM, F16, one file, biases on q, k
                        and v, untied
    qwen3-f32           Qwen3ForCausalLM, F32, one file, q_norm/k_norm,
                        head_dim 24 (q is 96 wide in a 64-wide model),
                        untied
    mistral-bf16        MistralForCausalLM, BF16, one file, no scaling,
                        a sliding window longer than the sequences

Each directory gets config.json, the weights (safetensors written here
with struct/json: an 8-byte little-endian header length, the JSON header,
the data) and golden.json: for a few token sequences, the log-softmax of
the logits at every position, computed in float64 from the stored
weights (converted from their dtype, so rounding to BF16/F16 is part of
the model, not an error).

The network (written out from transformers' modeling_llama.py,
modeling_qwen2.py and modeling_qwen3.py in plain torch, no transformers),
the random weights and the safetensors writer are llama_torch.py's,
shared with llama_predict_ref.py.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# write_safetensors is not used here: gen_gguf_models.py reaches it (and the
# rest) through this module
from llama_torch import (config_json, forward, make_weights,  # noqa: E402,F401
                         write_safetensors, write_weights)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")
SEED = 20250301

MODELS = [
    dict(dir="llama-bf16-sharded", arch="LlamaForCausalLM",
         model_type="llama", dtype="BF16", shards=3, tied=True,
         L=3, C=64, F=160, NH=4, NKV=2, D=16, V=384, theta=10000.0,
         rope_scaling={"rope_type": "llama3", "factor": 8.0,
                       "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                       "original_max_position_embeddings": 64},
         eps=1e-5),
    dict(dir="qwen2-f16", arch="Qwen2ForCausalLM", model_type="qwen2",
         dtype="F16", shards=1, tied=False, L=2, C=64, F=160, NH=4, NKV=2,
         D=16, V=320, theta=1000000.0, rope_scaling=None, eps=1e-6,
         qkv_bias=True),
    dict(dir="qwen3-f32", arch="Qwen3ForCausalLM", model_type="qwen3",
         dtype="F32", shards=1, tied=False, L=2, C=64, F=160, NH=4, NKV=2,
         D=24, V=352, theta=1000000.0, rope_scaling=None, eps=1e-6,
         qk_norm=True),
    dict(dir="mistral-bf16", arch="MistralForCausalLM",
         model_type="mistral", dtype="BF16", shards=1, tied=False, L=2,
         C=64, F=160, NH=4, NKV=2, D=16, V=300, theta=10000.0,
         rope_scaling=None, eps=1e-5, sliding_window=4096),
]


def write_model(cfg, gen):
    out = os.path.join(ROOT, cfg["dir"])
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        os.remove(os.path.join(out, f))
    p = make_weights(cfg, gen)
    write_weights(out, p, cfg["dtype"], cfg["shards"])
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config_json(cfg), f, indent=2)
        f.write("\n")

    pd = {k: t.to(torch.float64) for k, t in p.items()}
    V = cfg["V"]
    seqs = [torch.randint(0, V, (L,), generator=gen).tolist()
            for L in (6, 11, 16)]
    golden = {"note": "log-softmax of the logits at every position, float64 "
                      "torch reference from the stored weights; written by "
                      "tests/tools/gen_llama_golden.py",
              "architecture": cfg["arch"], "dtype": cfg["dtype"],
              "vocab_size": V, "sequences": []}
    for s in seqs:
        lp = forward(cfg, pd, s)
        golden["sequences"].append({
            "tokens": s,
            "logprobs": [[float("%.6f" % x) for x in row] for row in lp.tolist()],
        })
    with open(os.path.join(out, "golden.json"), "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")
    lp0 = golden["sequences"][-1]["logprobs"][-1]
    print("wrote %s: %d parameters, %s, last row's max logprob %.3f" %
          (out, sum(t.numel() for t in p.values()), cfg["dtype"], max(lp0)))


def main():
    gen = torch.Generator().manual_seed(SEED)
    for cfg in MODELS:
        write_model(cfg, gen)


if __name__ == "__main__":
    main()
