"""llama_torch: the Llama family's network (LlamaForCausalLM,
MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM) in plain torch,
float64, written from transformers' equations without transformers, and
safetensors written and read with struct/json. The independent reference
that stamp's C forward pass is checked against: gen_llama_golden.py
(golden files under tests/data) and llama_predict_ref.py (random models
with real tokenizers, tests/cli/t93-llama-predict.sh) import it.

The network follows modeling_llama.py, modeling_qwen2.py and
modeling_qwen3.py: RMSNorm (x * rsqrt(mean(x^2) + eps) * w), rotary
embeddings with rotate_half and cat(freqs, freqs), llama3 frequency
scaling as in _compute_llama3_parameters, repeat_kv for grouped-query
attention, softmax(q k^T * head_dim^-0.5) with a causal mask, SwiGLU
down(silu(gate(x)) * up(x)), pre-norm residual blocks, final norm,
lm_head (the embeddings when tied).

A model's shape is a dict `cfg` with the keys L (layers), C (hidden),
F (intermediate), NH, NKV (heads, key/value heads), D (head_dim),
V (vocab_size), theta, rope_scaling (None or llama3's dict), eps, tied,
and optionally qkv_bias, qk_norm, and the init's standard deviations
(embed_std, proj_std, out_std, norm_std, head_std). config_of_json reads
the same dict back from a config.json the way transformers does, so the
reference never trusts the generator's own cfg.

Safetensors: an 8-byte little-endian header length, the JSON header
(padded with spaces to 8 bytes), the data.
"""
import json
import math
import os
import struct

import torch

TORCH_DTYPE = {"F32": torch.float32, "F16": torch.float16,
               "BF16": torch.bfloat16}
DTYPE_NAME = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


# ---- safetensors -----------------------------------------------------------

def tensor_bytes(t, dtype):
    t = t.contiguous()
    if dtype == "BF16":  # numpy has no bfloat16: write the bits
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors, dtype):
    """tensors: list of (name, tensor already in dtype). Returns the data's
    size in bytes."""
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


def read_safetensors(path):
    """{name: float64 tensor} of one safetensors file (F32, F16, BF16)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        raw = bytearray(data[a:b])
        if h["dtype"] == "BF16":
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16)
        else:
            t = torch.frombuffer(raw, dtype=TORCH_DTYPE[h["dtype"]])
        out[name] = t.to(torch.float64).reshape(h["shape"])
    return out


def write_weights(out, p, dtype, shards):
    """The tensors p (name -> tensor in dtype, in order) as
    model.safetensors, or as `shards` files model-0000i-of-0000n with
    model.safetensors.index.json: embeddings and the first layer, then a
    layer a shard, the final norm (and lm_head) with the last."""
    names = list(p)
    if shards == 1:
        write_safetensors(os.path.join(out, "model.safetensors"),
                          [(k, p[k]) for k in names], dtype)
        return
    groups = [[] for _ in range(shards)]
    for k in names:
        if k.startswith("model.layers."):
            layer = int(k.split(".")[2])
            groups[min(layer, shards - 1)].append(k)
        elif k.startswith("model.embed_tokens"):
            groups[0].append(k)
        else:
            groups[shards - 1].append(k)
    weight_map, total = {}, 0
    for i, g in enumerate(groups):
        fname = "model-%05d-of-%05d.safetensors" % (i + 1, shards)
        total += write_safetensors(os.path.join(out, fname),
                                   [(k, p[k]) for k in g], dtype)
        for k in g:
            weight_map[k] = fname
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total},
                   "weight_map": dict(sorted(weight_map.items()))},
                  f, indent=2)
        f.write("\n")


def read_weights(model_dir):
    """{name: float64 tensor} of a model directory, one file or sharded
    (every shard the index names)."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if not os.path.exists(index):
        return read_safetensors(os.path.join(model_dir, "model.safetensors"))
    with open(index) as f:
        weight_map = json.load(f)["weight_map"]
    p = {}
    for fname in sorted(set(weight_map.values())):
        p.update(read_safetensors(os.path.join(model_dir, fname)))
    return p


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


def rope_bands(cfg):
    """(high, medium, low): how many of llama3 scaling's frequencies fall
    in each band (all high without scaling)."""
    rs = cfg["rope_scaling"]
    D, base = cfg["D"], cfg["theta"]
    inv = 1.0 / (base ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    if rs is None:
        return (len(inv), 0, 0)
    wavelen = 2 * math.pi / inv
    old = rs["original_max_position_embeddings"]
    lo, hi = old / rs["low_freq_factor"], old / rs["high_freq_factor"]
    high = int((wavelen < hi).sum())
    low = int((wavelen > lo).sum())
    return (high, len(inv) - high - low, low)


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
    """Random weights (name -> tensor in cfg's dtype), in the order
    transformers lists them. Larger than an initialisation's (the *_std
    keys, with these defaults) so every part of the network matters:
    attention scores of a few units, logits spread over several nats."""
    L, C, F, NH, NKV, D, V = (cfg[k] for k in "L C F NH NKV D V".split())
    rnd = lambda *shape, std: torch.randn(*shape, generator=gen) * std
    es, ps = cfg.get("embed_std", 0.4), cfg.get("proj_std", 0.2)
    os_, ns = cfg.get("out_std", 0.15), cfg.get("norm_std", 0.1)
    p = {"model.embed_tokens.weight": rnd(V, C, std=es)}
    for l in range(L):
        pre = "model.layers.%d." % l
        p[pre + "input_layernorm.weight"] = 1.0 + rnd(C, std=ns)
        p[pre + "self_attn.q_proj.weight"] = rnd(NH * D, C, std=ps)
        p[pre + "self_attn.k_proj.weight"] = rnd(NKV * D, C, std=ps)
        p[pre + "self_attn.v_proj.weight"] = rnd(NKV * D, C, std=ps)
        if cfg.get("qkv_bias"):
            p[pre + "self_attn.q_proj.bias"] = rnd(NH * D, std=ps)
            p[pre + "self_attn.k_proj.bias"] = rnd(NKV * D, std=ps)
            p[pre + "self_attn.v_proj.bias"] = rnd(NKV * D, std=ps)
        if cfg.get("qk_norm"):
            p[pre + "self_attn.q_norm.weight"] = 1.0 + rnd(D, std=2 * ns)
            p[pre + "self_attn.k_norm.weight"] = 1.0 + rnd(D, std=2 * ns)
        p[pre + "self_attn.o_proj.weight"] = rnd(C, NH * D, std=os_)
        p[pre + "post_attention_layernorm.weight"] = 1.0 + rnd(C, std=ns)
        p[pre + "mlp.gate_proj.weight"] = rnd(F, C, std=ps)
        p[pre + "mlp.up_proj.weight"] = rnd(F, C, std=ps)
        p[pre + "mlp.down_proj.weight"] = rnd(C, F, std=os_)
    p["model.norm.weight"] = 1.0 + rnd(C, std=ns)
    if not cfg["tied"]:
        p["lm_head.weight"] = rnd(V, C, std=cfg.get("head_std", es))
    return {n: t.to(TORCH_DTYPE[cfg["dtype"]]) for n, t in p.items()}


def config_json(cfg):
    """config.json's fields for cfg, as the real models of each
    architecture write them."""
    c = {
        "architectures": [cfg["arch"]], "model_type": cfg["model_type"],
        "hidden_act": "silu", "hidden_size": cfg["C"],
        "intermediate_size": cfg["F"], "num_hidden_layers": cfg["L"],
        "num_attention_heads": cfg["NH"],
        "num_key_value_heads": cfg["NKV"], "head_dim": cfg["D"],
        "max_position_embeddings": cfg.get("max_pos", 128),
        "rms_norm_eps": cfg["eps"],
        "rope_theta": cfg["theta"], "rope_scaling": cfg["rope_scaling"],
        "tie_word_embeddings": cfg["tied"], "vocab_size": cfg["V"],
        "bos_token_id": cfg.get("bos", 1), "eos_token_id": cfg.get("eos", 2),
        "torch_dtype": DTYPE_NAME[cfg["dtype"]],
        "initializer_range": 0.02, "use_cache": True,
    }
    if cfg["arch"] == "LlamaForCausalLM":
        c.update(attention_bias=False, mlp_bias=False,
                 eos_token_id=cfg.get("eos_list", [2, 3]), pretraining_tp=1)
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


def config_of_json(c):
    """The forward pass's cfg from a config.json (a dict), with
    transformers' defaults: head_dim hidden / heads when absent, key/value
    heads as many as heads, q/k norms for Qwen3, embeddings untied unless
    tie_word_embeddings says true (the four configs' default)."""
    arch = c["architectures"][0]
    known = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
             "Qwen3ForCausalLM")
    if arch not in known:
        raise ValueError("architecture %r is none of %s" % (arch, known))
    rs = c.get("rope_scaling")
    if rs is not None:
        kind = rs.get("rope_type", rs.get("type"))
        if kind == "default":
            rs = None
        elif kind != "llama3":
            raise ValueError("rope_scaling %r is not llama3" % kind)
    nh = c["num_attention_heads"]
    return dict(
        arch=arch, L=c["num_hidden_layers"], C=c["hidden_size"],
        F=c["intermediate_size"], NH=nh,
        NKV=c.get("num_key_value_heads") or nh,
        D=c.get("head_dim") or c["hidden_size"] // nh,
        V=c["vocab_size"], theta=c.get("rope_theta", 10000.0),
        rope_scaling=rs, eps=c["rms_norm_eps"],
        tied=c.get("tie_word_embeddings", False),
        qk_norm=arch == "Qwen3ForCausalLM",
        max_pos=c["max_position_embeddings"])


def load_model(model_dir):
    """(cfg, float64 weights) of a model directory."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = config_of_json(json.load(f))
    return cfg, read_weights(model_dir)
