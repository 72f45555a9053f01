// llama_cpp_check: loads a GGUF file with llama.cpp (the npm package
// node-llama-cpp, its prebuilt CPU binary: no build, no download) and
// compares its next-token distribution with what `stamp predict --json`
// said for the same prompts.
//
//   node llama_cpp_check.mjs MODEL.gguf CASES.json [NODE_MODULES_DIR]
//
// CASES.json: [{"prompt": TEXT, "tokens": [ids], "top": [{"id", "logprob"}]}]
// (stamp predict's --json answer with the prompt added; tools/llama_top's
// output, which may say "bos": true). For each case llama.cpp tokenizes
// the prompt (no special tokens; its BOS first when the case says "bos"
// and the model's metadata asks for one: add_bos_token), evaluates
// it and takes the raw logits of the next token, log-softmaxed here in
// double precision. Prints one JSON object:
//   {"cases": [{"prompt", "tokens", "tokens_same", "top1_stamp",
//     "top1_llama", "top1_llama_stamp_logprob" (stamp's log-probability of
//     llama.cpp's top-1, null when not in stamp's list), "top":
//     [{"id", "logprob"}] (llama.cpp's top 10), "max_abs_diff"}],
//     "tokens_same", "top1_same", "max_abs_diff"}
// where max_abs_diff is the largest |logprob_stamp - logprob_llama| over
// the ids of stamp's top list. The caller applies the tolerance.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [modelPath, casesPath, modulesDir] = process.argv.slice(2);
if (!modelPath || !casesPath) {
  console.error("usage: node llama_cpp_check.mjs MODEL.gguf CASES.json [NODE_MODULES_DIR]");
  process.exit(2);
}
// node-llama-cpp is found in NODE_MODULES_DIR when given (a test's
// npm prefix), else by node's usual resolution
let entry = "node-llama-cpp";
if (modulesDir) {
  const req = createRequire(path.join(path.resolve(modulesDir), "x.js"));
  entry = pathToFileURL(req.resolve("node-llama-cpp")).href;
}
const { getLlama, LlamaLogLevel } = await import(entry);
const cases = JSON.parse(readFileSync(casesPath, "utf8"));

const t0 = Date.now();
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({
  contextSize: Math.min(model.trainContextSize, 2048),
  sequences: 1,
  // node-llama-cpp's default thread count oversubscribes a small
  // machine (each evaluation then waits seconds); the cores there are
  threads: availableParallelism(),
  // f32 keys and values (llama.cpp's default is f16), so that an f32
  // export is compared at f32's precision
  flashAttention: false,
  experimentalKvCacheKeyType: "F32",
  experimentalKvCacheValueType: "F32",
});
const sequence = context.getSequence();
if (process.env.LLAMA_CPP_CHECK_TIMES) console.error(`loaded in ${Date.now() - t0} ms`);

const out = { cases: [], tokens_same: true, top1_same: true, max_abs_diff: 0 };
for (const c of cases) {
  const tokens = Array.from(model.tokenize(c.prompt, false));
  if (c.bos && model.tokens.shouldPrependBosToken) tokens.unshift(model.tokens.bos);
  await sequence.clearHistory();
  const input = tokens.map((t, i) =>
    i === tokens.length - 1 ? [t, { generateNext: { logits: true } }] : t);
  const res = await sequence.controlledEvaluate(input);
  const logits = res[tokens.length - 1].next.logits; // Map id -> logit
  let max = -Infinity;
  for (const v of logits.values()) if (v > max) max = v;
  let sum = 0;
  for (const v of logits.values()) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  const logprob = new Map();
  for (const [id, v] of logits) logprob.set(id, v - lse);
  const top = [...logprob.entries()]
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, 10)
    .map(([id, lp]) => ({ id, logprob: lp }));
  let diff = 0;
  for (const t of c.top) {
    const lp = logprob.has(t.id) ? logprob.get(t.id) : -Infinity;
    diff = Math.max(diff, Math.abs(lp - t.logprob));
  }
  const tokensSame = JSON.stringify(tokens) === JSON.stringify(c.tokens);
  const r = {
    prompt: c.prompt,
    tokens,
    tokens_same: tokensSame,
    top1_stamp: c.top[0].id,
    top1_llama: top[0].id,
    top1_llama_stamp_logprob: c.top.find((t) => t.id === top[0].id)?.logprob ?? null,
    top,
    max_abs_diff: diff,
  };
  out.cases.push(r);
  out.tokens_same &&= tokensSame;
  out.top1_same &&= r.top1_stamp === r.top1_llama;
  out.max_abs_diff = Math.max(out.max_abs_diff, diff);
}
console.log(JSON.stringify(out));
await context.dispose();
await model.dispose();
await llama.dispose();
