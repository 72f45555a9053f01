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

The network is written out here from transformers' modeling_llama.py,
modeling_qwen2.py and modeling_qwen3.py in plain torch (no transformers):
RMSNorm (x * rsqrt(mean(x^2) + eps) * w), rotary embeddings with
rotate_half and cat(freqs, freqs), llama3 frequency scaling as in
_compute_llama3_parameters, repeat_kv for grouped-query attention,
softmax(q k^T * head_dim^-0.5) with a causal mask, SwiGLU
down(silu(gate(x)) * up(x)), pre-norm residual blocks, final norm, lm_head.
"""
import json
import math
import os
import struct

import torch

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

TORCH_DTYPE = {"F32": torch.float32, "F16": torch.float16,
               "BF16": torch.bfloat16}


def tensor_bytes(t, dtype):
    t = t.contiguous()
    if dtype == "BF16":  # numpy has no bfloat16: write the bits
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors, dtype):
    """tensors: list of (name, tensor already in dtype)."""
    header, offset, blobs = {}, 0, []
    for name, t in tensors:
        data = tensor_bytes(t, dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape),
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
    return offset


# ---- the network, from transformers' equations, in float64 -------------

def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def inv_freq_of(cfg):
    D, base = cfg["D"], cfg["theta"]
    inv_freq = 1.0 / (base ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    rs = cfg["rope_scaling"]
    if rs is None:
        return inv_freq
    # _compute_llama3_parameters
    factor = rs["factor"]
    low_freq_factor = rs["low_freq_factor"]
    high_freq_factor = rs["high_freq_factor"]
    old_context_len = rs["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen,
                                 inv_freq / factor, inv_freq)
    smooth_factor = ((old_context_len / wavelen - low_freq_factor) /
                     (high_freq_factor - low_freq_factor))
    smoothed = ((1 - smooth_factor) * inv_freq_llama / factor +
                smooth_factor * inv_freq_llama)
    is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium, smoothed, inv_freq_llama)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def forward(cfg, p, tokens):
    """Log-probabilities (T, V) of one sequence, float64."""
    T = len(tokens)
    NH, NKV, D = cfg["NH"], cfg["NKV"], cfg["D"]
    eps = cfg["eps"]
    x = p["model.embed_tokens.weight"][torch.tensor(tokens)]
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq_of(cfg))
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()  # (T, D)
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(cfg["L"]):
        g = lambda n: p.get("model.layers.%d.%s" % (l, n))
        lin = lambda h, n: (h @ g(n + ".weight").T +
                            (g(n + ".bias") if g(n + ".bias") is not None
                             else 0))
        h = rms_norm(x, g("input_layernorm.weight"), eps)
        q = lin(h, "self_attn.q_proj").view(T, NH, D)
        k = lin(h, "self_attn.k_proj").view(T, NKV, D)
        v = lin(h, "self_attn.v_proj").view(T, NKV, D)
        if cfg.get("qk_norm"):
            q = rms_norm(q, g("self_attn.q_norm.weight"), eps)
            k = rms_norm(k, g("self_attn.k_norm.weight"), eps)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # repeat_kv: query head i reads key/value head i // (NH / NKV)
        k = k.repeat_interleave(NH // NKV, dim=0)
        v = v.repeat_interleave(NH // NKV, dim=0)
        att = (q @ k.transpose(-1, -2)) * D ** -0.5
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(0, 1).reshape(T, NH * D)
        x = x + lin(y, "self_attn.o_proj")
        h = rms_norm(x, g("post_attention_layernorm.weight"), eps)
        gate = lin(h, "mlp.gate_proj")
        x = x + lin(torch.nn.functional.silu(gate) * lin(h, "mlp.up_proj"),
                    "mlp.down_proj")
    x = rms_norm(x, p["model.norm.weight"], eps)
    head = p["model.embed_tokens.weight"] if cfg["tied"] else p["lm_head.weight"]
    return torch.log_softmax(x @ head.T, dim=-1)


# ---- random weights in real shapes ----------------------------------------

def make_weights(cfg, gen):
    L, C, F, NH, NKV, D, V = (cfg[k] for k in "L C F NH NKV D V".split())
    rnd = lambda *shape, std: torch.randn(*shape, generator=gen) * std
    # Larger than an initialisation's so every part of the network matters:
    # attention scores of a few units, logits spread over several nats.
    p = {"model.embed_tokens.weight": rnd(V, C, std=0.4)}
    for l in range(L):
        pre = "model.layers.%d." % l
        p[pre + "input_layernorm.weight"] = 1.0 + rnd(C, std=0.1)
        p[pre + "self_attn.q_proj.weight"] = rnd(NH * D, C, std=0.2)
        p[pre + "self_attn.k_proj.weight"] = rnd(NKV * D, C, std=0.2)
        p[pre + "self_attn.v_proj.weight"] = rnd(NKV * D, C, std=0.2)
        if cfg.get("qkv_bias"):
            p[pre + "self_attn.q_proj.bias"] = rnd(NH * D, std=0.2)
            p[pre + "self_attn.k_proj.bias"] = rnd(NKV * D, std=0.2)
            p[pre + "self_attn.v_proj.bias"] = rnd(NKV * D, std=0.2)
        if cfg.get("qk_norm"):
            p[pre + "self_attn.q_norm.weight"] = 1.0 + rnd(D, std=0.2)
            p[pre + "self_attn.k_norm.weight"] = 1.0 + rnd(D, std=0.2)
        p[pre + "self_attn.o_proj.weight"] = rnd(C, NH * D, std=0.15)
        p[pre + "post_attention_layernorm.weight"] = 1.0 + rnd(C, std=0.1)
        p[pre + "mlp.gate_proj.weight"] = rnd(F, C, std=0.2)
        p[pre + "mlp.up_proj.weight"] = rnd(F, C, std=0.2)
        p[pre + "mlp.down_proj.weight"] = rnd(C, F, std=0.15)
    p["model.norm.weight"] = 1.0 + rnd(C, std=0.1)
    if not cfg["tied"]:
        p["lm_head.weight"] = rnd(V, C, std=0.4)
    return {n: t.to(TORCH_DTYPE[cfg["dtype"]]) for n, t in p.items()}


def config_json(cfg):
    c = {
        "architectures": [cfg["arch"]], "model_type": cfg["model_type"],
        "hidden_act": "silu", "hidden_size": cfg["C"],
        "intermediate_size": cfg["F"], "num_hidden_layers": cfg["L"],
        "num_attention_heads": cfg["NH"],
        "num_key_value_heads": cfg["NKV"], "head_dim": cfg["D"],
        "max_position_embeddings": 128, "rms_norm_eps": cfg["eps"],
        "rope_theta": cfg["theta"], "rope_scaling": cfg["rope_scaling"],
        "tie_word_embeddings": cfg["tied"], "vocab_size": cfg["V"],
        "bos_token_id": 1, "eos_token_id": 2,
        "torch_dtype": {"F32": "float32", "F16": "float16",
                        "BF16": "bfloat16"}[cfg["dtype"]],
        "initializer_range": 0.02, "use_cache": True,
    }
    if cfg["arch"] == "LlamaForCausalLM":
        c.update(attention_bias=False, mlp_bias=False,
                 eos_token_id=[2, 3], pretraining_tp=1)
    if cfg["arch"] == "MistralForCausalLM":
        c.update(sliding_window=cfg["sliding_window"])
    if cfg["arch"] in ("Qwen2ForCausalLM", "Qwen3ForCausalLM"):
        c.update(use_sliding_window=False, sliding_window=4096,
                 max_window_layers=cfg["L"])
    if cfg["arch"] == "Qwen2ForCausalLM":
        del c["head_dim"]  # Qwen2's configs have none: hidden / heads
    if cfg["arch"] == "Qwen3ForCausalLM":
        c.update(attention_bias=False)
    return c


def write_model(cfg, gen):
    out = os.path.join(ROOT, cfg["dir"])
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        os.remove(os.path.join(out, f))
    p = make_weights(cfg, gen)
    names = list(p)
    n = cfg["shards"]
    if n == 1:
        write_safetensors(os.path.join(out, "model.safetensors"),
                          [(k, p[k]) for k in names], cfg["dtype"])
    else:
        # embeddings and the first layer, then a layer a shard, the final
        # norm with the last
        groups = [[] for _ in range(n)]
        for k in names:
            if k.startswith("model.layers."):
                l = int(k.split(".")[2])
                groups[min(l, n - 1)].append(k)
            elif k.startswith("model.embed_tokens"):
                groups[0].append(k)
            else:
                groups[n - 1].append(k)
        weight_map, total = {}, 0
        for i, g in enumerate(groups):
            fname = "model-%05d-of-%05d.safetensors" % (i + 1, n)
            total += write_safetensors(os.path.join(out, fname),
                                       [(k, p[k]) for k in g], cfg["dtype"])
            for k in g:
                weight_map[k] = fname
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total},
                       "weight_map": dict(sorted(weight_map.items()))},
                      f, indent=2)
            f.write("\n")
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
