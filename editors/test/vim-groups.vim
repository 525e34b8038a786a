" vim-groups.vim — run by tests/suites/70-editors.sh as
"   vim -N -u NONE -i NONE -es -S vim-groups.vim POSITIONS OUT
" with editors/vim first on 'runtimepath' (set by the caller with --cmd).
" For every "FILE LINE COL CLASS TOKEN" line of POSITIONS it writes
" "RAW TRANS" to OUT: the syntax group at that place and the standard group it
" links to. Then, for every FILE, it re-indents a copy with all indentation
" removed and writes "indent FILE ok" or "indent FILE LINE: got N want M";
" and once "settings COMMENTSTRING|SHIFTWIDTH|EXPANDTAB|INDENTEXPR".
filetype plugin indent on
syntax on
let s:args = argv()
let s:out = []
let s:files = []
for s:line in readfile(s:args[0])
  let s:f = split(s:line, "\t")
  if s:f[0] ==# 'MISSING'
    call add(s:out, 'MISSING MISSING')
    continue
  endif
  if expand('%:p') !=# fnamemodify(s:f[0], ':p')
    execute 'silent edit! ' . fnameescape(s:f[0])
    if index(s:files, s:f[0]) < 0
      call add(s:files, s:f[0])
    endif
  endif
  let s:id = synID(str2nr(s:f[1]), str2nr(s:f[2]), 1)
  let s:raw = synIDattr(s:id, 'name')
  let s:trans = synIDattr(synIDtrans(s:id), 'name')
  call add(s:out, (s:raw ==# '' ? '-' : s:raw) . ' ' . (s:trans ==# '' ? '-' : s:trans)
        \ . ' ' . &filetype)
endfor
for s:file in s:files
  execute 'silent edit! ' . fnameescape(s:file)
  if s:file ==# s:files[0]
    " the ftplugin's settings
    call add(s:out, printf('settings %s|%d|%d|%s', &commentstring, &shiftwidth, &expandtab, &indentexpr))
  endif
  let s:want = map(range(1, line('$')), 'indent(v:val)')
  silent %s/^\s\+//e
  silent normal! gg=G
  let s:bad = ''
  for s:n in range(1, line('$'))
    if getline(s:n) !~# '^\s*$' && indent(s:n) != s:want[s:n - 1] && s:bad ==# ''
      let s:bad = printf('%d: got %d want %d', s:n, indent(s:n), s:want[s:n - 1])
    endif
  endfor
  call add(s:out, 'indent ' . s:file . ' ' . (s:bad ==# '' ? 'ok' : s:bad))
  set nomodified
endfor
call writefile(s:out, s:args[1])
qall!
