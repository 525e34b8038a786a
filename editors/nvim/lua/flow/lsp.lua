-- flow/lsp.lua — `flowc lsp` for Neovim's built-in LSP client (Neovim 0.7 and later).
--
--   require('flow.lsp').setup()                       -- flowc on PATH
--   require('flow.lsp').setup({ cmd = { '/opt/flow/bin/flowc', 'lsp', '-I', 'lib' } })
--
-- setup() makes *.flow files filetype `flow` (as editors/vim/ftdetect does) and, for
-- every buffer of that filetype, starts one `flowc lsp` per project root (the
-- nearest folder up from the file holding flow.yaml or .git, else the file's folder)
-- and attaches the buffer to it. Neovim 0.7 has no vim.lsp.start, so the client is
-- started with vim.lsp.start_client and reused through its id. Everything the
-- server offers then works through the usual commands: diagnostics as you type,
-- vim.lsp.buf.hover(), .definition(), .rename(), .document_symbol() and omnifunc
-- completion (set here as the buffer's 'omnifunc', <C-x><C-o>).
local M = {}

local clients = {} -- root folder -> client id

local function root_of(file)
  local dir = vim.fn.fnamemodify(file, ':p:h')
  local d = dir
  while d and d ~= '' do
    if vim.loop.fs_stat(d .. '/flow.yaml') or vim.loop.fs_stat(d .. '/.git') then
      return d
    end
    local up = vim.fn.fnamemodify(d, ':h')
    if up == d then break end
    d = up
  end
  return dir
end

local function attach(opts, bufnr)
  local file = vim.api.nvim_buf_get_name(bufnr)
  if file == '' then return end
  local root = root_of(file)
  local id = clients[root]
  if not id or not vim.lsp.get_client_by_id(id) then
    id = vim.lsp.start_client({
      name = 'flowc',
      cmd = opts.cmd,
      root_dir = root,
      on_attach = opts.on_attach,
      capabilities = opts.capabilities,
    })
    clients[root] = id
  end
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
    vim.api.nvim_buf_set_option(bufnr, 'omnifunc', 'v:lua.vim.lsp.omnifunc')
  end
end

function M.setup(opts)
  opts = vim.tbl_extend('keep', opts or {}, { cmd = { 'flowc', 'lsp' } })
  local group = vim.api.nvim_create_augroup('flow_lsp', { clear = true })
  vim.api.nvim_create_autocmd({ 'BufRead', 'BufNewFile' }, {
    group = group, pattern = '*.flow', command = 'setfiletype flow',
  })
  vim.api.nvim_create_autocmd('FileType', {
    group = group, pattern = 'flow',
    callback = function(ev) attach(opts, ev.buf) end,
  })
end

return M
