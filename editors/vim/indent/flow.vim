" Vim indent file for flow pipeline files: one shiftwidth (4 spaces) per
" open brace, bracket or parenthesis; a line that starts by closing one goes
" back a level.
if exists("b:did_indent")
  finish
endif
let b:did_indent = 1

setlocal indentexpr=GetFlowIndent(v:lnum)
setlocal indentkeys=0{,0},0),0],!^F,o,O,e
setlocal autoindent

let b:undo_indent = "setlocal indentexpr< indentkeys< autoindent<"

if exists("*GetFlowIndent")
  finish
endif

" The line without its strings and comment, so brackets there do not count.
function! s:FlowCode(lnum) abort
  let line = getline(a:lnum)
  let line = substitute(line, '"\%(\\.\|[^"\\]\)*"', '""', 'g')
  return substitute(line, '#.*$', '', '')
endfunction

function! GetFlowIndent(lnum) abort
  let prev = prevnonblank(a:lnum - 1)
  if prev == 0
    return 0
  endif
  let ind = indent(prev)
  " brackets the previous line opens and leaves open; the closers it starts
  " with were already counted when it was indented
  let code = substitute(s:FlowCode(prev), '^\s*[)\]}]\+', '', '')
  let depth = 0
  for ch in split(code, '\zs')
    if ch =~# '[({[]'
      let depth += 1
    elseif ch =~# '[)\]}]'
      let depth -= 1
    endif
  endfor
  if depth > 0
    let ind += shiftwidth()
  elseif depth < 0
    let ind -= shiftwidth()
  endif
  if getline(a:lnum) =~# '^\s*[)\]}]'
    let ind -= shiftwidth()
  endif
  return ind < 0 ? 0 : ind
endfunction
