// extension.js — the Flow extension's language client: starts `flowc lsp` (the language
// server, docs/lsp.md) for .flow documents and talks LSP to it over stdio through
// vscode-languageclient (pinned in package.json). The command is the setting
// flow.server.path (default: flowc on PATH) with flow.server.args after `lsp`.
// Highlighting, brackets and snippets need none of this: they are declared in
// package.json and work without flowc.
'use strict';
const vscode = require('vscode');
const { LanguageClient } = require('vscode-languageclient/node');

let client;

function activate(context) {
    const cfg = vscode.workspace.getConfiguration('flow');
    const server = {
        command: cfg.get('server.path', 'flowc'),
        args: ['lsp', ...cfg.get('server.args', [])],
    };
    client = new LanguageClient('flow', 'Flow (flowc lsp)', { run: server, debug: server }, {
        documentSelector: [
            { scheme: 'file', language: 'flow' },
            { scheme: 'untitled', language: 'flow' },
        ],
    });
    context.subscriptions.push(client.start()); // 7.x: a Disposable that stops it
}

function deactivate() {
    return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
