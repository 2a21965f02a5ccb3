// Usage: node normalize.js IN.json OUT.json
// Normalizes each string of IN (a JSON array) with the reference library's NFC, NFD, NFKC and NFKD
// normalizers; writes {"nfc": [...], "nfd": [...], "nfkc": [...], "nfkd": [...]} to OUT.
// Needs the npm package tokenizers@0.23.2 (NODE_PATH pointing at its node_modules).
const tokenizers = require('tokenizers');
const fs = require('fs');
const input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const forms = { nfc: tokenizers.nfcNormalizer(), nfd: tokenizers.nfdNormalizer(), nfkc: tokenizers.nfkcNormalizer(), nfkd: tokenizers.nfkdNormalizer() };
const out = {};
for (const [name, normalizer] of Object.entries(forms)) {
  // Strings are joined by '\n' (a starter that composes with nothing) and split again.
  out[name] = [];
  for (let i = 0; i < input.length; i += 4096) {
    const chunk = input.slice(i, i + 4096);
    const parts = normalizer.normalizeString(chunk.join('\n')).split('\n');
    if (parts.length !== chunk.length) throw new Error(`input strings must not contain '\\n'`);
    out[name].push(...parts);
  }
}
fs.writeFileSync(process.argv[3], JSON.stringify(out));
