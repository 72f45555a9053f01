#!/usr/bin/env node
// hf_encode: the reference token ids of prompts under model directories'
// tokenizer.json (and tokenizer_config.json, when there), from
// @lenml/tokenizers (a fork of transformers.js's tokenizers; installed by
// tests/tools/hf_tokenizers_install.sh). encode(text) with its defaults:
// the special tokens the post-processor's template adds (Llama 2's BOS),
// as `stamp predict` encodes. tests/cli/t93-llama-predict.sh compares
// stamp's ids with these.
//
//   NODE_PATH=build/npm/node_modules node tests/tools/hf_encode.js PROMPTS.json DIR...
//
// PROMPTS.json: an array of strings. Prints {"DIR": [[ids of prompt 0],
// ...], ...}.
'use strict';
const fs = require('fs');
const path = require('path');
const { TokenizerLoader } = require('@lenml/tokenizers');

const [promptsFile, ...dirs] = process.argv.slice(2);
if (!promptsFile || !dirs.length) {
  console.error('usage: hf_encode.js PROMPTS.json DIR...');
  process.exit(2);
}
const prompts = JSON.parse(fs.readFileSync(promptsFile, 'utf-8'));
const out = {};
for (const dir of dirs) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf-8'));
  const cfgPath = path.join(dir, 'tokenizer_config.json');
  const config = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, 'utf-8')) : {};
  const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: config });
  out[dir] = prompts.map(text => {
    const ids = tok.encode(text);
    if (ids.some(x => !Number.isInteger(x)))
      throw new Error(`${dir}: non-integer id for ${JSON.stringify(text)}`);
    return ids;
  });
}
console.log(JSON.stringify(out));
