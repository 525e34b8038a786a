// client.js — checks editors/vscode/extension.js without VS Code (which cannot run
// headless here): `vscode` and `vscode-languageclient/node` are replaced by stand-ins
// that record what the extension asks for; then the server command it built is run
// for real and must answer an LSP initialize. Run by tests/suites/72-lsp.sh:
//   node editors/vscode/test/client.js /path/to/flowc
'use strict';
const Module = require('module');
const path = require('path');
const { spawn } = require('child_process');

const flowc = process.argv[2];
const seen = [];
const stubs = {
    vscode: {
        workspace: {
            getConfiguration: (section) => ({
                get: (key, def) => (section === 'flow' && key === 'server.path' ? flowc : def),
            }),
        },
    },
    'vscode-languageclient/node': {
        LanguageClient: class {
            constructor(id, name, serverOptions, clientOptions) {
                seen.push({ id, name, serverOptions, clientOptions });
            }
            start() { seen.push('start'); return { dispose() {} }; }
            stop() { seen.push('stop'); }
        },
    },
};
const load = Module._load;
Module._load = function (request, ...rest) {
    return Object.prototype.hasOwnProperty.call(stubs, request) ? stubs[request] : load.call(this, request, ...rest);
};

let failed = 0;
function check(name, ok, detail) {
    console.log(ok ? `PASS vscode:client: ${name}` : `FAIL vscode:client: ${name}: ${JSON.stringify(detail)}`);
    if (!ok) failed++;
}

const pkg = require(path.join(__dirname, '..', 'package.json'));
check('package.json: main, activation, a pinned vscode-languageclient',
      pkg.main === './extension.js' && pkg.activationEvents.includes('onLanguage:flow') &&
      /^\d+\.\d+\.\d+$/.test(pkg.dependencies['vscode-languageclient']), pkg);
const ext = require(path.join(__dirname, '..', 'extension.js'));
const context = { subscriptions: [] };
ext.activate(context);
const c = seen[0] || {};
const run = (c.serverOptions || {}).run || {};
check('activate: a client for language flow running `flowc lsp`',
      run.command === flowc && run.args[0] === 'lsp' &&
      c.clientOptions.documentSelector.some((s) => s.language === 'flow') && seen.includes('start') &&
      context.subscriptions.length === 1, seen);
ext.deactivate();
check('deactivate stops it', seen.includes('stop'), seen);

// the command the extension built speaks LSP
const p = spawn(run.command, run.args, { stdio: ['pipe', 'pipe', 'inherit'] });
let buf = Buffer.alloc(0), answered = false;
const timer = setTimeout(() => { check('the server answers initialize', false, 'no answer in 20 s'); p.kill(); }, 20000);
p.stdout.on('data', (d) => {
    if (answered) return; // the rest (shutdown's answer) is not looked at
    buf = Buffer.concat([buf, d]);
    const s = buf.toString();
    const i = s.indexOf('\r\n\r\n');
    if (i < 0) return;
    const n = Number(/Content-Length: (\d+)/i.exec(s.slice(0, i))[1]);
    if (buf.length < i + 4 + n) return;
    clearTimeout(timer);
    answered = true;
    const msg = JSON.parse(buf.slice(i + 4, i + 4 + n).toString());
    check('the server answers initialize', msg.id === 1 && msg.result.capabilities.hoverProvider, msg);
    const send = (m) => { const b = JSON.stringify(m); p.stdin.write(`Content-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`); };
    send({ jsonrpc: '2.0', id: 2, method: 'shutdown' });
    send({ jsonrpc: '2.0', method: 'exit' });
});
p.on('exit', (code) => {
    check('the server exits 0 after shutdown and exit', code === 0, code);
    process.exit(failed ? 1 : 0);
});
const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { processId: null, rootUri: null, capabilities: {} } });
p.stdin.write(`Content-Length: ${Buffer.byteLength(init)}\r\n\r\n${init}`);
