// Regenerates the <name>.json files beside this file: tokenizers derived from the repository's
// fixtures, each exercising features the fixtures do not, stored as {base, patch, cases}: the
// fixture it starts from, a JSON merge patch (RFC 7396) turning it into the variant, and the ids,
// tokens and decodes the reference library produces for the patched tokenizer.
// Usage: NODE_PATH=/path/to/node_modules node generate-cases.js   (npm package tokenizers@0.23.2)
const { Tokenizer } = require('tokenizers');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..', '..', '..', '..');
const load = (p) => JSON.parse(fs.readFileSync(path.join(root, p), 'utf8'));
const byteLevelBase = 'tests/fixtures/tokenizers/bytelevel-regex-split/tokenizer.json';
const sentencePieceBase = 'tests/fixtures/tokenizers/sentencepiece-bpe/tokenizer.json';
const withBase = (base) => { const t = load(base); Object.defineProperty(t, 'base', { value: base, enumerable: false }); return t; };
const byteLevel = () => withBase(byteLevelBase);
const sentencePiece = () => withBase(sentencePieceBase);
const common = ['  two  spaces  ', 'tabs\tand\nnewlines\n\n', 'emoji 🙂🚀 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢', '<s>special</s> inside text', '', 'x\u00a0y\u200bz', 'ǅ ﬁ ß ẞ', "I'm don't we'll they're"];

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
/** The merge patch turning a into b (arrays are replaced whole). */
function diff(a, b) {
  const patch = {};
  for (const k of Object.keys(b)) {
    if (!(k in a)) patch[k] = b[k];
    else if (JSON.stringify(a[k]) === JSON.stringify(b[k])) continue;
    else patch[k] = isObject(a[k]) && isObject(b[k]) ? diff(a[k], b[k]) : b[k];
  }
  for (const k of Object.keys(a)) if (!(k in b)) patch[k] = null;
  return patch;
}
/** RFC 7396: objects merge, null removes, anything else replaces. */
function apply(target, patch) {
  if (!isObject(patch)) return patch;
  const result = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete result[k];
    else result[k] = apply(result[k], v);
  }
  return result;
}
const added = (content, options = {}) => ({ id: 0, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: false, ...options });
const withIds = (tokens, first) => tokens.map((t, i) => ({ ...t, id: first + i }));
const byteLevelSequence = (...splits) => ({ type: 'Sequence', pretokenizers: [...splits, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] });
const split = (pattern, behavior, invert = false) => ({ type: 'Split', pattern, behavior, invert });

/** A BPE with "##" continuing-subword prefix and "</w>" suffix, its merges learnt greedily from a few words. */
function subwordModel() {
  const words = ['hello', 'yellow', 'low', 'lower', 'newest', 'widest', 'hell', 'owl'];
  const vocab = { '[UNK]': 0 };
  const add = (t) => { if (!(t in vocab)) vocab[t] = Object.keys(vocab).length; };
  const symbols = (w) => Array.from(w).map((c, i, all) => (i > 0 ? '##' : '') + c + (i === all.length - 1 ? '</w>' : ''));
  for (const c of 'abcdefghijklmnopqrstuvwxyz') for (const s of [c, '##' + c, c + '</w>', '##' + c + '</w>']) add(s);
  const merges = [];
  const seqs = words.map(symbols);
  for (let round = 0; round < 40; round++) {
    const counts = new Map();
    for (const s of seqs) for (let i = 0; i + 1 < s.length; i++) { const k = s[i] + ' ' + s[i + 1]; counts.set(k, (counts.get(k) || 0) + 1); }
    if (counts.size === 0) break;
    const [best] = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0];
    const [a, b] = best.split(' ');
    const merged = a + b.replace(/^##/, '');
    add(merged);
    merges.push(best);
    for (const s of seqs) for (let i = 0; i + 1 < s.length; i++) if (s[i] === a && s[i + 1] === b) { s.splice(i, 2, merged); }
  }
  return { type: 'BPE', dropout: null, unk_token: '[UNK]', continuing_subword_prefix: '##', end_of_word_suffix: '</w>', fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges };
}

const variants = {
  'added-tokens-bytelevel': () => {
    const t = byteLevel();
    t.added_tokens.push(...withIds([
      added('<mask>', { lstrip: true, special: true }),
      added('[R]', { rstrip: true }),
      added('cat', { single_word: true }),
      added('é', { normalized: true }),
      added('<x>'),
      added('<x><y>'),
      added('Ａ', { normalized: true, special: true }),
    ], 1200));
    t.normalizer = { type: 'NFKC' };
    t.post_processor = { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<|im_start|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<|im_end|>', type_id: 0 } }], pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }], special_tokens: { '<|im_start|>': { id: '<|im_start|>', ids: [1], tokens: ['<|im_start|>'] }, '<|im_end|>': { id: '<|im_end|>', ids: [2], tokens: ['<|im_end|>'] } } };
    return [t, ['a <mask> b', 'a<mask>', '  <mask>  x', '<mask><mask>', 'x [R]   y', '[R]\n\nz', 'cat concat cats cat. _cat cat_ écat', 'cafe\u0301 é e\u0301', '<x><y><x> <x><y', 'Ａ A ＡＡ', '<|im_start|>user\nhi<|im_end|>\n']];
  },
  'added-tokens-normalized-sentencepiece': () => {
    const t = sentencePiece();
    t.added_tokens.push(...withIds([added('<x>', { normalized: true, special: true }), added('hi there', { normalized: true }), added('<y>', { normalized: false, special: true, rstrip: true, lstrip: true })], 1200));
    return [t, ['<x>', 'a <x>', '<x> a', 'hi there', 'say hi there', 'a <y> b', '<y>  <y>', 'x<y>']];
  },
  'split-behaviors': () => {
    const t = byteLevel();
    t.pre_tokenizer = byteLevelSequence(split({ Regex: '\\s+' }, 'Removed'), split({ Regex: '(?=[A-Z])' }, 'Isolated'), split({ Regex: '[0-9]' }, 'MergedWithPrevious'), split({ String: '-' }, 'MergedWithNext'));
    return [t, ['CamelCaseWords and more', 'a1b22c333', '1abc', 'x--y-z-', '-lead', '  A  B  ']];
  },
  'split-contiguous-invert': () => {
    const t = byteLevel();
    t.pre_tokenizer = byteLevelSequence(split({ Regex: '\\p{L}+' }, 'Removed', true), split({ Regex: '[aeiou]' }, 'Contiguous'), split({ String: 'xx' }, 'Isolated', true));
    return [t, ['beautiful queueing', 'aaa bbb aei', 'xxaxxxbxx', 'héllo wörld']];
  },
  'regex-translation': () => {
    const t = byteLevel();
    t.pre_tokenizer = byteLevelSequence(split({ Regex: "^\\s+|\\s+$|(?i:ǅ)|[A-Za-z]{1,3}+|\\p{Lu}\\p{Ll}*|\\p{M}+|\\w{2}|\\h+|\\p{N}++|x{,2}|\\P{L}|(?m:.)" }, 'Isolated'), split({ Regex: "q{2}?z|y(?#note)+|\\bk\\B|(?i)v(?-i)w" }, 'Isolated'));
    return [t, ['  Hello World  \n next line ', 'ǅungla Ǆ ǆ', 'e\u0301\u0301 𝔘𝔫𝔦 𝟎𝟏𝟐 𝐀𝐁', 'deadBEEF 0x1f', 'Ⅻ² ٣٤ 🙂🚀', 'a\nb\r\nc', 'z qqz qz yyy kk k kx Vw VW vW']];
  },
  'metaspace-first': () => {
    const t = sentencePiece();
    t.normalizer = null;
    t.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: true };
    t.decoder = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: true };
    return [t, ['<s>hi there', 'hi <s> there', '  lead  two', 'x</s>y']];
  },
  'metaspace-always-unsplit': () => {
    const t = sentencePiece();
    t.normalizer = null;
    t.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: false };
    t.decoder = { type: 'Sequence', decoders: [{ type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: false }, { type: 'ByteFallback' }, { type: 'Fuse' }] };
    return [t, ['<s>hi there', 'hi <s> there', '▁▁x', 'ü 𝔘']];
  },
  'normalizers-and-regex-replace': () => {
    const t = byteLevel();
    t.normalizer = { type: 'Sequence', normalizers: [{ type: 'NFKD' }, { type: 'Lowercase' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Replace', pattern: { Regex: '\\d+' }, content: '#' }, { type: 'Strip', strip_left: true, strip_right: true }, { type: 'NFC' }] };
    t.decoder = { type: 'Sequence', decoders: [{ type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true }, { type: 'Replace', pattern: { Regex: '#+' }, content: '<num>' }, { type: 'Replace', pattern: { String: 'ﬁ' }, content: 'fi' }] };
    return [t, ['ﬁ İstanbul ΣΑΣ', '  Mixed \t  SPACE 123 45 ', 'Ⅻ ½ ㎏ ﷺ', 'Å Ω ḱ Ǆ', '\uAC00\u11A8 \u1100\u1161']];
  },
  'subword-prefix-suffix': () => {
    const t = byteLevel();
    t.added_tokens = [added('[UNK]', { special: true })];
    t.normalizer = { type: 'Lowercase' };
    t.pre_tokenizer = split({ Regex: '\\s+' }, 'Removed');
    t.model = subwordModel();
    t.decoder = { type: 'BPEDecoder', suffix: '</w>' };
    return [t, ['hello world', 'Yellow lower lowest', 'héllo owl', 'newest widest hell', 'x']];
  },
  'ignore-merges': () => {
    const t = byteLevel();
    t.model.ignore_merges = true;
    t.model.vocab['Ġqwerty'] = 1200;
    t.model.vocab['Hello'] = 1201;
    return [t, ['Hello qwerty', ' qwerty qwertyuiop', 'HelloHello']];
  },
  'byte-fallback-unk': () => {
    const t = sentencePiece();
    for (const b of ['<0xF0>', '<0x9F>']) delete t.model.vocab[b];
    t.model.fuse_unk = true;
    return [t, ['emoji 🙂🚀 and 𝔘𝔫', 'ok 🙂 ok', 'ü😀ü']];
  },
  'byte-fallback-unk-unfused': () => {
    const t = sentencePiece();
    for (const b of ['<0xF0>', '<0x9F>']) delete t.model.vocab[b];
    t.model.fuse_unk = false;
    return [t, ['emoji 🙂🚀 and 𝔘𝔫', 'ok 🙂 ok']];
  },
  'truncation-left-fixed-padding': () => {
    const t = sentencePiece();
    t.truncation = { direction: 'Left', max_length: 6, strategy: 'LongestFirst', stride: 0 };
    t.padding = { strategy: { Fixed: 8 }, direction: 'Right', pad_to_multiple_of: null, pad_id: 2, pad_type_id: 0, pad_token: '</s>' };
    return [t, ['Hello world and more words here', 'hi', '']];
  },
  'truncation-right-multiple-padding': () => {
    const t = byteLevel();
    t.truncation = { direction: 'Right', max_length: 5, strategy: 'OnlyFirst', stride: 2 };
    t.padding = { strategy: 'BatchLongest', direction: 'Left', pad_to_multiple_of: 4, pad_id: 0, pad_type_id: 0, pad_token: '<|endoftext|>' };
    return [t, ['Hello world and more words here', 'hi', 'one two', '']];
  },
  'string-merges': () => {
    const t = byteLevel();
    t.model.merges = t.model.merges.map(([a, b]) => `${a} ${b}`);
    return [t, []];
  },
};

// Pre-tokenizer regexes of real models and edge cases, with the pieces the reference's Split (Isolated) makes.
const patterns = [
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  "[一-龥\u3040-ゟ゠-ヿ]+",
  "\\w+|\\W",
  "a(?i)b|c|(x(?-i)y|z)w",
  "\\bk\\B|\\b\\w",
  "^\\s+|\\s+$|(?m:.)",
  "q{2}?z|y(?#note)+|(?i)v(?-i)w|\\h{2,}|x{,2}|\\p{^L}+",
];
const patternTexts = [
  "Hello world! It's 2024-05-01, isn't it?\n\n  def foo(x):\r\n\treturn x**2 # ok",
  "I'M YOU'LL we'VE naïve café e\u0301\u0301 ǅungla ǄǄ",
  "日本語のテキスト、カタカナ! 中文 漢字ひらがな",
  "emoji 🙂🚀 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟎𝟏𝟐 𝐀𝐁𝐂 ✓ ①②",
  "नमस्ते दुनिया — مرحبا بالعالم ١٢٣ สวัสดีครับ",
  "tabs\tnbsp\u00a0em\u2003ideo\u3000zw\u200bj\u200dk\u2028end   ",
  "https://example.org/a?b=c&d=e /path/to/file.txt ../x",
  "z qqz qz yyy kk k kx Vw VW vW deadBEEF 0x1f xxx",
  "   \n  leading and trailing  \n\n",
  "ac ab aB c C xY xy zw Zw x²y ¼ ① Ⓐ 🄰b",
  "it'\u017F x'K y'\u212A z'\u0130 w'LL v'\u1E9E'\u00DF",
];

(async () => {
  const regexCases = [];
  for (const pattern of patterns) {
    const base = load(byteLevelBase);
    base.pre_tokenizer = split({ Regex: pattern }, 'Isolated');
    const pre = Tokenizer.fromString(JSON.stringify(base)).getPreTokenizer();
    for (const text of patternTexts) regexCases.push([pattern, text, pre.preTokenizeString(text).map((p) => p[0])]);
  }
  fs.writeFileSync(path.join(__dirname, 'regex.cases.json'), `{"tokenizers_version": "0.23.2", "cases": [\n${regexCases.map((c) => '  ' + JSON.stringify(c)).join(',\n')}\n]}\n`);
  console.log('regex', regexCases.length);

  for (const [name, build] of Object.entries(variants)) {
    const [variant, texts] = build();
    const patch = diff(load(variant.base), variant);
    const tokenizer = Tokenizer.fromString(JSON.stringify(apply(load(variant.base), patch)));
    const cases = [];
    for (const input of [...texts, ...common]) {
      const withSpecial = await tokenizer.encode(input, null, { addSpecialTokens: true });
      const without = await tokenizer.encode(input, null, { addSpecialTokens: false });
      const ids = withSpecial.getIds();
      cases.push({ text: input, ids, ids_no_special: without.getIds(), tokens: withSpecial.getTokens(), decoded: await tokenizer.decode(ids, true), decoded_keep_special: await tokenizer.decode(ids, false) });
    }
    const cases_ = cases.map((c) => '  ' + JSON.stringify(c)).join(',\n');
    fs.writeFileSync(path.join(__dirname, `${name}.json`), `{"tokenizers_version": "0.23.2", "base": ${JSON.stringify(variant.base)},\n "patch": ${JSON.stringify(patch)},\n "cases": [\n${cases_}\n]}\n`);
    console.log(name, cases.length);
  }
})().catch((e) => { console.error(e); process.exit(1); });
