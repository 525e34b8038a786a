// tokenize.js POSITIONS OUT — run by tests/suites/70-editors.sh.
//
// Loads ../syntaxes/flow.tmLanguage.json with vscode-textmate (the engine VS
// Code uses) on vscode-oniguruma, tokenizes each FILE named in POSITIONS
// ("FILE LINE COL CLASS TOKEN" lines, tab-separated) and writes, for each
// line, the scopes of the token at that place, space-separated. After them it
// writes one "illegal FILE LINE:COL TEXT" line per token scoped invalid.*
// in any tokenized file (there should be none).
'use strict';
const fs = require('fs');
const path = require('path');
const vsctm = require('vscode-textmate');
const oniguruma = require('vscode-oniguruma');

const [positionsFile, outFile] = process.argv.slice(2);
const grammarPath = path.join(__dirname, '..', 'syntaxes', 'flow.tmLanguage.json');
const wasm = fs.readFileSync(require.resolve('vscode-oniguruma/release/onig.wasm')).buffer;

async function main() {
    await oniguruma.loadWASM(wasm);
    const registry = new vsctm.Registry({
        onigLib: Promise.resolve({
            createOnigScanner: (sources) => new oniguruma.OnigScanner(sources),
            createOnigString: (s) => new oniguruma.OnigString(s),
        }),
        loadGrammar: async (scopeName) => {
            if (scopeName !== 'source.flow') return null;
            const text = fs.readFileSync(grammarPath, 'utf8');
            return vsctm.parseRawGrammar(text, grammarPath);
        },
    });
    const grammar = await registry.loadGrammar('source.flow');
    const cache = new Map(); // file -> array of token arrays, one per line
    const illegal = [];
    const tokensOf = (file) => {
        if (cache.has(file)) return cache.get(file);
        const lines = fs.readFileSync(file, 'utf8').split('\n');
        let state = vsctm.INITIAL;
        const result = lines.map((text, i) => {
            const r = grammar.tokenizeLine(text, state);
            state = r.ruleStack;
            for (const t of r.tokens)
                if (t.scopes.some((s) => s.startsWith('invalid')))
                    illegal.push(`illegal ${file} ${i + 1}:${t.startIndex + 1} ${text.slice(t.startIndex, t.endIndex)}`);
            return r.tokens;
        });
        cache.set(file, result);
        return result;
    };
    const out = [];
    for (const line of fs.readFileSync(positionsFile, 'utf8').split('\n')) {
        if (!line) continue;
        const [file, ln, col] = line.split('\t');
        if (file === 'MISSING') {
            out.push('MISSING');
            continue;
        }
        const tokens = tokensOf(file)[Number(ln) - 1] || [];
        const at = Number(col) - 1;
        const tok = tokens.find((t) => t.startIndex <= at && at < t.endIndex);
        out.push(tok ? tok.scopes.join(' ') : '-');
    }
    fs.writeFileSync(outFile, out.concat(illegal).join('\n') + '\n');
}

main().catch((e) => {
    console.error(e && e.stack ? e.stack : String(e));
    process.exit(1);
});
