" Vim filetype detection for flow pipeline files (*.flow).
autocmd BufRead,BufNewFile *.flow set filetype=flow
