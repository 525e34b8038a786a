-- nvim_e2e.lua — end to end with headless Neovim 0.7 and editors/nvim: open a .flow
-- file with an error and read the diagnostic the built-in client got from flowc lsp,
-- request a hover, jump to a definition in an imported file. Run by
-- tests/suites/73-lsp.sh:
--   FLOWC=... T=dir OUT=file nvim --headless --clean --cmd 'set rtp^=editors/nvim' \
--       -c 'luafile tests/lsp/nvim_e2e.lua'
-- Writes PASS/FAIL lines to OUT, then quits.
local out = io.open(os.getenv('OUT'), 'w')
local function report(ok, name, detail)
  out:write((ok and 'PASS' or 'FAIL') .. ' nvim-lsp: ' .. name ..
            (ok and '' or (': ' .. vim.inspect(detail))) .. '\n')
  out:flush()
end

local ok, err = pcall(function()
  require('flow.lsp').setup({ cmd = { os.getenv('FLOWC'), 'lsp' } })
  local dir = os.getenv('T')
  vim.cmd('edit ' .. dir .. '/main.flow')
  report(vim.bo.filetype == 'flow', 'filetype flow', vim.bo.filetype)

  -- the diagnostic of the error on line 5 (0-based 4)
  local got = vim.wait(15000, function() return #vim.diagnostic.get(0) > 0 end, 50)
  local d = vim.diagnostic.get(0)[1]
  report(got and d.lnum == 4 and d.message:find("unknown name 'ad'", 1, true) and
         d.message:find("did you mean 'add'", 1, true),
         'the diagnostic of an error, with its hint', d)

  -- hover on the x of `twice(x)` (line 4, 0-based 3)
  local line = vim.api.nvim_buf_get_lines(0, 3, 4, false)[1]
  local col = line:find('twice%(x') + 6 - 1
  local params = { textDocument = { uri = vim.uri_from_bufnr(0) },
                   position = { line = 3, character = col } }
  local res = vim.lsp.buf_request_sync(0, 'textDocument/hover', params, 10000)
  local text = ''
  for _, r in pairs(res or {}) do
    if r.result then text = r.result.contents.value end
  end
  report(text:find('x: int', 1, true) ~= nil, 'hover', { res = res })

  -- go to the definition of twice, in common.flow
  vim.api.nvim_win_set_cursor(0, { 4, (line:find('twice')) })
  vim.lsp.buf.definition()
  local jumped = vim.wait(10000, function()
    return vim.api.nvim_buf_get_name(0):match('common%.flow$') ~= nil
  end, 50)
  local pos = vim.api.nvim_win_get_cursor(0)
  report(jumped and pos[1] == 2 and pos[2] == 5, 'definition in an imported file',
         { name = vim.api.nvim_buf_get_name(0), cursor = pos })
end)
if not ok then report(false, 'the script', err) end
out:close()
vim.cmd('qa!')
