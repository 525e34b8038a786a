" Vim compiler file for flowc: `:compiler flowc` then `:make` checks the
" current file (flowc --check) and fills the quickfix list with its errors
" and warnings ("FILE:LINE:COL: error: MESSAGE", then the source line, a caret
" and possibly a "hint:" line, which are left out).
if exists("current_compiler")
  finish
endif
let current_compiler = "flowc"

if exists(":CompilerSet") != 2
  command -nargs=* CompilerSet setlocal <args>
endif

let s:cpo_save = &cpo
set cpo&vim

CompilerSet makeprg=flowc\ --check\ %:S
CompilerSet errorformat=%f:%l:%c:\ %trror:\ %m,
      \%f:%l:%c:\ %tarning:\ %m,
      \%f:%l:%c:\ %tote:\ %m,
      \%-G%.%#

let &cpo = s:cpo_save
unlet s:cpo_save
