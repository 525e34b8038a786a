" Vim filetype plugin for flow pipeline files.
if exists("b:did_ftplugin")
  finish
endif
let b:did_ftplugin = 1

setlocal commentstring=#\ %s
setlocal comments=:#
setlocal formatoptions-=t formatoptions+=croql
setlocal shiftwidth=4 softtabstop=4 expandtab
setlocal suffixesadd=.flow

let b:undo_ftplugin = "setlocal commentstring< comments< formatoptions< shiftwidth< softtabstop< expandtab< suffixesadd<"

" :make checks the file with flowc (see compiler/flowc.vim)
if !exists("b:current_compiler")
  compiler flowc
  let b:undo_ftplugin .= " | setlocal makeprg< errorformat<"
endif
