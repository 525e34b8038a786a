" Vim syntax file
" Language:    flow (pipeline language, docs/language.md)
" Files:       *.flow
"
" Classes: keywords, types, mapping operations (partial expand expand_kwargs
" map filter zip combine flatten), task options, built-in functions, strings
" with {…} interpolation (highlighted as code inside) and escapes, durations,
" dates, numbers, comments, and the arrows => and ->.
"
" Names like int, str, float and files are types or variables unless a `(`
" follows, so they are matched with patterns rather than keywords (a Vim
" keyword would win over every pattern).

if exists("b:current_syntax")
  finish
endif

let s:cpo_save = &cpo
set cpo&vim

syn case match

" ---- comments ---------------------------------------------------------------
syn keyword flowTodo      TODO FIXME XXX NOTE contained
syn match   flowComment   /#.*$/ contains=flowTodo,@Spell

" ---- keywords ---------------------------------------------------------------
syn keyword flowDeclare   task flow group nextgroup=flowFuncName skipwhite
syn keyword flowDeclare   type nextgroup=flowTypeName skipwhite
syn keyword flowDeclare   library nextgroup=flowLibName skipwhite
syn keyword flowStatement let return with sh schedule after
" import and as: keywords only in an import at the start of a line (contextual)
syn match   flowDeclare   /^import\>/
syn match   flowDeclare   /\%(^import\s\+\%("[^"]*"\|\h\w*\)\s\+\)\@<=as\>/
syn keyword flowConditional if then else
syn keyword flowBoolean   true false
syn keyword flowWordOp    and or not

syn match   flowFuncName  /\h\w*/ contained
syn match   flowTypeName  /\h\w*/ contained
syn match   flowLibName   /\h\w*/ contained

" ---- names ------------------------------------------------------------------
" a parameter or field being declared (`root: dir`), a keyword argument
" (`expand(file = files)`), and a lambda's parameter (`x => …`)
syn match   flowParam     /\<\h\w*\ze\s*:/
syn match   flowParam     /\%([(,]\s*\)\@<=\h\w*\ze\s*=\%([=>]\)\@!/
syn match   flowParam     /\<\h\w*\ze\s*=>/
syn match   flowParam     /(\@<=\s*\h\w*\%(\s*,\s*\h\w*\)*\ze\s*)\s*=>/ contains=flowParamSep
syn match   flowParamSep  /,/ contained

" task options, inside `with {…}`
syn match   flowOption    /\<\%(retries\|retry_delay\|timeout\|cache\|version\|max_map\|concurrency\|trigger\|run_as\|image\|label\)\ze\s*:/

" types (not when called: int(x) is a conversion)
syn match   flowType      /\<\%(int\|float\|bool\|str\|path\|dir\|bytes\|date\|time\|duration\)\>\%(\s*(\)\@!/

" built-in functions, when called
syn match   flowBuiltin   /\<\%(range\|files\|len\|basename\|dirname\|stem\|ext\|join\|str\|int\|float\|upper\|lower\|replace\|contains\|starts_with\|ends_with\|date\)\ze\s*(/

" mapping operations: methods after a dot, and the combinators when called
syn match   flowMapping   /\.\@1<=\<\%(partial\|expand\|expand_kwargs\|map\|filter\)\>/
syn match   flowMapping   /\<\%(zip\|combine\|flatten\)\ze\s*(/

" ---- literals ---------------------------------------------------------------
syn match   flowNumber    /\<\d[0-9_]*\>/
syn match   flowNumber    /\<0[xX]\x[0-9a-fA-F_]*\>/
syn match   flowFloat     /\<\d[0-9_]*\.\d[0-9_]*\%([eE][+-]\=\d\+\)\=\>/
syn match   flowFloat     /\<\d[0-9_]*[eE][+-]\=\d\+\>/
syn match   flowDuration  /\<\d[0-9_]*\%(ms\|s\|m\|h\|d\)\>/
syn match   flowDate      /\<\d\{4}-\d\d-\d\d\%(T\d\d:\d\d:\d\dZ\)\=\>/

syn match   flowEscape    /\\[nt\\"{}]/ contained
syn match   flowEscape    /\\u{\x\{1,6}}/ contained
syn match   flowBadEscape /\\[^nt\\"{}u]/ contained
syn region  flowString    start=/"/ skip=/\\\\\|\\"/ end=/"/ oneline
      \ contains=flowEscape,flowBadEscape,flowInterp,@Spell
syn region  flowInterp    matchgroup=flowInterpDelim start=/{/ end=/}/ contained oneline
      \ contains=@flowExpr,flowInterpNest
" a record literal inside an interpolation: "{ {a = 1}.a }"
syn region  flowInterpNest start=/{/ end=/}/ contained oneline transparent
      \ contains=@flowExpr,flowInterpNest

syn cluster flowExpr contains=flowString,flowNumber,flowFloat,flowDuration,flowDate,
      \ flowBoolean,flowWordOp,flowConditional,flowBuiltin,flowMapping,flowArrow,
      \ flowOperator,flowParam,flowType

" ---- operators --------------------------------------------------------------
syn match   flowOperator  /[-+*/%<>!]=\=\|==/
syn match   flowArrow     /=>\|->/

" ---- sync -------------------------------------------------------------------
syn sync minlines=20

" ---- links to the standard groups -------------------------------------------
hi def link flowComment     Comment
hi def link flowTodo        Todo
hi def link flowDeclare     Keyword
hi def link flowStatement   Statement
hi def link flowConditional Conditional
hi def link flowBoolean     Boolean
hi def link flowWordOp      Operator
hi def link flowFuncName    Function
hi def link flowTypeName    Typedef
hi def link flowLibName     Identifier
hi def link flowParam       Identifier
hi def link flowParamSep    Delimiter
hi def link flowOption      Label
hi def link flowType        Type
hi def link flowBuiltin     Function
hi def link flowMapping     Special
hi def link flowNumber      Number
hi def link flowFloat       Float
hi def link flowDuration    Number
hi def link flowDate        Constant
hi def link flowString      String
hi def link flowEscape      SpecialChar
hi def link flowBadEscape   Error
hi def link flowInterpDelim Delimiter
hi def link flowOperator    Operator
hi def link flowArrow       Operator

let b:current_syntax = "flow"

let &cpo = s:cpo_save
unlet s:cpo_save
