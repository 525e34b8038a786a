;;; flow-mode.el --- Major mode for flow pipeline files  -*- lexical-binding: t; -*-

;; Version: 0.1.0
;; Keywords: languages
;; Package-Requires: ((emacs "25.1"))

;;; Commentary:

;; Editing support for `.flow' files, the pipeline language of flow
;; (docs/language.md): highlighting of keywords, types, the mapping
;; operations (partial expand expand_kwargs map filter zip combine flatten),
;; task options, built-in functions, strings with {...} interpolation and
;; escapes, durations, dates, numbers, comments and the arrows => and ->;
;; indentation by braces, brackets and parentheses; `#' comments; an index
;; of declarations (imenu); and checking with `flowc --check' as you type
;; (M-x flymake-mode).  With eglot (built into Emacs 29; the elpa-eglot
;; package before), M-x eglot talks to `flowc lsp', the language server:
;; diagnostics with hints, hover (eldoc), go to definition (M-.), completion,
;; symbols (imenu) and rename (M-x eglot-rename).  flow-mode registers it in
;; `eglot-server-programs' once eglot is loaded.
;;
;; Install: put this file on `load-path' and add (require 'flow-mode), or
;; (autoload 'flow-mode "flow-mode" nil t) -- `.flow' files then open in it.

;;; Code:

(require 'flymake)

(defgroup flow nil
  "Major mode for flow pipeline files."
  :group 'languages
  :prefix "flow-")

(defcustom flow-indent-offset 4
  "Columns of indentation per open brace, bracket or parenthesis."
  :type 'integer
  :safe #'integerp
  :group 'flow)

(defcustom flow-flowc-program "flowc"
  "The flow compiler, run as `flowc --check FILE' to check the buffer."
  :type 'string
  :group 'flow)

;; ---- faces: one per class, each inheriting a standard face ------------------

(defface flow-mapping-face
  '((t :inherit font-lock-builtin-face :weight bold))
  "Face for the mapping operations: partial, expand, map, combine..."
  :group 'flow)

(defface flow-option-face
  '((t :inherit font-lock-constant-face))
  "Face for task options in `with {...}': retries, timeout, cache..."
  :group 'flow)

(defface flow-number-face
  '((t :inherit font-lock-constant-face))
  "Face for integer and float literals."
  :group 'flow)

(defface flow-duration-face
  '((t :inherit font-lock-constant-face :slant italic))
  "Face for durations such as 30s or 500ms."
  :group 'flow)

(defface flow-date-face
  '((t :inherit font-lock-constant-face :slant italic))
  "Face for dates such as 2026-01-31."
  :group 'flow)

(defface flow-escape-face
  '((t :inherit font-lock-regexp-grouping-backslash))
  "Face for escapes in strings: \\n \\t \\\" \\{ \\u{...}."
  :group 'flow)

(defface flow-interpolation-face
  '((t :inherit font-lock-variable-name-face))
  "Face for {...} interpolations inside strings."
  :group 'flow)

(defface flow-arrow-face
  '((t :inherit font-lock-keyword-face))
  "Face for the arrows -> (result type) and => (lambda)."
  :group 'flow)

;; ---- the words of the language ---------------------------------------------

(defconst flow-declaration-keywords '("task" "flow" "group" "type" "library")
  "Keywords that open a declaration.")

(defconst flow-keywords
  '("let" "return" "with" "sh" "schedule" "after" "if" "then" "else" "and" "or" "not")
  "Other keywords.")

(defconst flow-types
  '("int" "float" "bool" "str" "path" "dir" "bytes" "date" "time" "duration")
  "Built-in type names.")

(defconst flow-mapping-methods '("partial" "expand" "expand_kwargs" "map" "filter")
  "Mapping operations written as methods: t.expand(...).")

(defconst flow-mapping-functions '("zip" "combine" "flatten")
  "Mapping operations written as functions: combine(a, b).")

(defconst flow-options
  '("retries" "retry_delay" "timeout" "cache" "version" "max_map" "concurrency"
    "trigger" "run_as" "image" "label")
  "Task options, written `name: value' inside `with {...}'.")

(defconst flow-builtins
  '("range" "files" "len" "basename" "dirname" "stem" "ext" "join" "str" "int"
    "float" "upper" "lower" "replace" "contains" "starts_with" "ends_with" "date")
  "Built-in functions.")

(defconst flow--ident "[A-Za-z_][A-Za-z0-9_]*")

;; ---- strings: interpolations and escapes --------------------------------------

(defun flow--in-string-p (pos)
  "Non-nil when POS is inside a string literal."
  (save-excursion (nth 3 (syntax-ppss pos))))

(defun flow--escaped-p (pos)
  "Non-nil when the character at POS follows an odd number of backslashes."
  (save-excursion
    (goto-char pos)
    (= 1 (% (skip-chars-backward "\\\\") 2))))

(defun flow--match-interpolation (limit)
  "Find the next {...} interpolation in a string before LIMIT.
Sets group 0 to the whole of it, 1 and 3 to the braces, 2 to the code."
  (let (found)
    (while (and (not found) (re-search-forward "{" limit t))
      (let ((open (match-beginning 0)))
        (when (and (flow--in-string-p open) (not (flow--escaped-p open)))
          (let ((depth 1) (pos (point)) (end (line-end-position)))
            ;; find the matching brace on this line; strings nested inside
            ;; the code are skipped over
            (while (and (> depth 0) (< pos end))
              (let ((c (char-after pos)))
                (cond ((eq c ?\\) (setq pos (1+ pos)))
                      ((eq c ?{) (setq depth (1+ depth)))
                      ((eq c ?}) (setq depth (1- depth)))
                      ((eq c ?\")
                       (setq pos (1+ pos))
                       (while (and (< pos end) (not (eq (char-after pos) ?\")))
                         (when (eq (char-after pos) ?\\) (setq pos (1+ pos)))
                         (setq pos (1+ pos))))))
              (setq pos (1+ pos)))
            (when (= depth 0)
              (set-match-data (list open pos open (1+ open) (1+ open) (1- pos)
                                    (1- pos) pos))
              (goto-char pos)
              (setq found t))))))
    found))

(defun flow--match-escape (limit)
  "Find the next escape sequence inside a string before LIMIT."
  (let (found)
    (while (and (not found)
                (re-search-forward "\\\\\\(?:u{[0-9A-Fa-f]+}\\|[nt\\\\\"{}]\\)" limit t))
      (when (flow--in-string-p (match-beginning 0))
        (setq found t)))
    found))

;; ---- font-lock ------------------------------------------------------------------

(defconst flow-font-lock-keywords
  `(;; inside strings (override the string face)
    (flow--match-escape (0 'flow-escape-face t))
    (flow--match-interpolation (0 'flow-interpolation-face t))
    ;; declarations and the names they introduce
    (,(concat "\\_<\\(task\\|flow\\|group\\)\\_>[ \t]+\\(" flow--ident "\\)")
     (1 font-lock-keyword-face) (2 font-lock-function-name-face))
    (,(concat "\\_<\\(type\\)\\_>[ \t]+\\(" flow--ident "\\)")
     (1 font-lock-keyword-face) (2 font-lock-type-face))
    (,(concat "\\_<\\(library\\)\\_>[ \t]+\\(" flow--ident "\\)")
     (1 font-lock-keyword-face) (2 font-lock-constant-face))
    ;; import and as: keywords only in an import at the start of a line (contextual)
    ("^\\(import\\)\\_>" 1 font-lock-keyword-face)
    ("^import[ \t]+\\(?:\"[^\"\n]*\"\\|\\sw+\\)[ \t]+\\(as\\)\\_>" 1 font-lock-keyword-face)
    (,(regexp-opt flow-declaration-keywords 'symbols) . font-lock-keyword-face)
    (,(regexp-opt flow-keywords 'symbols) . font-lock-keyword-face)
    (,(regexp-opt '("true" "false") 'symbols) . font-lock-constant-face)
    ;; mapping operations and built-in functions (called)
    (,(concat "\\.\\(" (regexp-opt flow-mapping-methods) "\\)\\_>") 1 'flow-mapping-face)
    (,(concat "\\_<\\(" (regexp-opt flow-mapping-functions) "\\)[ \t]*(") 1 'flow-mapping-face)
    (,(concat "\\_<\\(" (regexp-opt flow-builtins) "\\)[ \t]*(") 1 font-lock-builtin-face)
    ;; types (int(x) is a conversion, matched above)
    (,(concat "\\_<\\(" (regexp-opt flow-types) "\\)\\_>\\(?:[ \t]*[^ \t(]\\|[ \t]*$\\)")
     1 font-lock-type-face)
    ;; task options, then other declared names: parameters, fields, keyword
    ;; arguments and lambda parameters
    (,(concat "\\_<\\(" (regexp-opt flow-options) "\\)[ \t]*:") 1 'flow-option-face)
    (,(concat "\\_<\\(" flow--ident "\\)[ \t]*:") 1 font-lock-variable-name-face)
    (,(concat "[(,][ \t]*\\(" flow--ident "\\)[ \t]*=[^=>]") 1 font-lock-variable-name-face)
    (,(concat "\\_<\\(" flow--ident "\\)[ \t]*=>") 1 font-lock-variable-name-face)
    ;; (a, b) => ...: each name in the parentheses
    (,(concat "(\\([ \t]*" flow--ident "\\(?:[ \t]*,[ \t]*" flow--ident "\\)*[ \t]*\\))[ \t]*=>")
     (,flow--ident
      (progn (goto-char (match-beginning 1)) (match-end 1))
      (goto-char (match-end 0))
      (0 font-lock-variable-name-face)))
    ;; literals: dates and durations before plain numbers
    ("\\_<[0-9]\\{4\\}-[0-9]\\{2\\}-[0-9]\\{2\\}\\(T[0-9]\\{2\\}:[0-9]\\{2\\}:[0-9]\\{2\\}Z\\)?\\_>" . 'flow-date-face)
    ("\\_<[0-9][0-9_]*\\(?:ms\\|s\\|m\\|h\\|d\\)\\_>" . 'flow-duration-face)
    ("\\_<0[xX][0-9A-Fa-f_]+\\_>" . 'flow-number-face)
    ("\\_<[0-9][0-9_]*\\(?:\\.[0-9][0-9_]*\\)?\\(?:[eE][-+]?[0-9]+\\)?\\_>" . 'flow-number-face)
    ("[0-9][0-9_]*\\.[0-9][0-9_]*\\(?:[eE][-+]?[0-9]+\\)?" . 'flow-number-face)
    ;; arrows
    ("=>\\|->" . 'flow-arrow-face))
  "Highlighting for `flow-mode'.")

;; ---- syntax -----------------------------------------------------------------------

(defvar flow-mode-syntax-table
  (let ((st (make-syntax-table)))
    (modify-syntax-entry ?# "<" st)
    (modify-syntax-entry ?\n ">" st)
    (modify-syntax-entry ?\" "\"" st)
    (modify-syntax-entry ?\\ "\\" st)
    (modify-syntax-entry ?_ "_" st)
    (modify-syntax-entry ?' "." st)
    (dolist (c '(?+ ?- ?* ?/ ?% ?< ?> ?= ?! ?: ?, ?.))
      (modify-syntax-entry c "." st))
    st)
  "Syntax table for `flow-mode'.")

;; ---- indentation ----------------------------------------------------------------

(defun flow-indent-line ()
  "Indent the current line: one `flow-indent-offset' per open bracket.
A line that starts by closing a bracket lines up with the line that opened it."
  (interactive)
  (let* ((ppss (save-excursion (syntax-ppss (line-beginning-position))))
         (open (nth 1 ppss))
         (closing (save-excursion
                    (back-to-indentation)
                    (memq (char-after) '(?\) ?\] ?\}))))
         (indent (cond ((nth 3 ppss) (current-indentation)) ; inside a string: leave it
                       ((not open) 0)
                       (t (let ((base (save-excursion
                                        (goto-char open)
                                        (current-indentation))))
                            (if closing base (+ base flow-indent-offset))))))
         (offset (- (current-column) (current-indentation))))
    (indent-line-to (max 0 indent))
    (when (> offset 0) (forward-char offset))))

;; ---- checking with flowc (flymake) --------------------------------------------------

(defvar-local flow--flymake-process nil
  "The running `flowc --check' of this buffer, if any.")

(defconst flow--diagnostic-regexp
  "^\\(.*\\):\\([0-9]+\\):\\([0-9]+\\): \\(error\\|warning\\|note\\): \\(.*\\)$"
  "A diagnostic line of flowc: FILE:LINE:COL: KIND: MESSAGE.")

(defun flow--flymake-report (source proc temp report-fn)
  "Report to REPORT-FN the diagnostics PROC printed about SOURCE; remove TEMP."
  (unwind-protect
      (if (not (eq proc (buffer-local-value 'flow--flymake-process source)))
          (flymake-log :warning "Canceling an obsolete check %s" proc)
        (with-current-buffer (process-buffer proc)
          (goto-char (point-min))
          (let (diags)
            (while (re-search-forward flow--diagnostic-regexp nil t)
              (let* ((line (string-to-number (match-string 2)))
                     (col (string-to-number (match-string 3)))
                     (kind (match-string 4))
                     (region (flymake-diag-region source line col)))
                (when region
                  (push (flymake-make-diagnostic
                         source (car region) (cdr region)
                         (cond ((equal kind "error") :error)
                               ((equal kind "warning") :warning)
                               (t :note))
                         (match-string 5))
                        diags))))
            (funcall report-fn (nreverse diags)))))
    (kill-buffer (process-buffer proc))
    (delete-file temp)))

(defun flow-flymake (report-fn &rest _args)
  "Flymake backend: check the buffer with `flowc --check' and call REPORT-FN.
The buffer is written to a temporary file beside the visited one, so that
library paths resolve as they will for the real file."
  (unless (executable-find flow-flowc-program)
    (error "Cannot find %s (see `flow-flowc-program')" flow-flowc-program))
  (when (process-live-p flow--flymake-process)
    (kill-process flow--flymake-process))
  (let* ((source (current-buffer))
         (dir (if buffer-file-name (file-name-directory buffer-file-name) default-directory))
         (temp (make-temp-file (expand-file-name ".flymake-" dir) nil ".flow")))
    (save-restriction
      (widen)
      (write-region nil nil temp nil 'silent))
    (setq flow--flymake-process
          (make-process
           :name "flow-flymake" :noquery t :connection-type 'pipe
           :buffer (generate-new-buffer " *flow-flymake*")
           :command (list flow-flowc-program "--check" temp)
           :sentinel
           (lambda (proc _event)
             (when (memq (process-status proc) '(exit signal))
               (flow--flymake-report source proc temp report-fn)))))))

;; ---- the mode ---------------------------------------------------------------------

;;;###autoload
(define-derived-mode flow-mode prog-mode "Flow"
  "Major mode for editing flow pipeline files (.flow).

\\{flow-mode-map}"
  :syntax-table flow-mode-syntax-table
  :group 'flow
  (setq-local comment-start "# ")
  (setq-local comment-end "")
  (setq-local comment-start-skip "#+[ \t]*")
  (setq-local indent-tabs-mode nil)
  (setq-local tab-width 4)
  (setq-local indent-line-function #'flow-indent-line)
  (setq-local electric-indent-chars (append '(?\} ?\] ?\)) electric-indent-chars))
  (setq-local font-lock-defaults '(flow-font-lock-keywords nil nil))
  (add-hook 'flymake-diagnostic-functions #'flow-flymake nil t)
  (setq-local imenu-generic-expression
              `(("Types" ,(concat "^[ \t]*type[ \t]+\\(" flow--ident "\\)") 1)
                ("Tasks" ,(concat "^[ \t]*task[ \t]+\\(" flow--ident "\\)") 1)
                ("Groups" ,(concat "^[ \t]*group[ \t]+\\(" flow--ident "\\)") 1)
                (nil ,(concat "^[ \t]*flow[ \t]+\\(" flow--ident "\\)") 1))))

;; ---- the language server (eglot) ------------------------------------------------------
(defcustom flow-lsp-arguments nil
  "More arguments for `flowc lsp' (after `lsp'), such as (\"-I\" \"lib\")."
  :type '(repeat string))

(defun flow-lsp-contact (&optional _interactive)
  "The command eglot starts for a flow buffer: `flow-flowc-program' lsp ARGS."
  (append (list flow-flowc-program "lsp") flow-lsp-arguments))

(defvar eglot-server-programs)
(with-eval-after-load 'eglot
  (add-to-list 'eglot-server-programs '(flow-mode . flow-lsp-contact)))

;;;###autoload
(add-to-list 'auto-mode-alist '("\\.flow\\'" . flow-mode))

(provide 'flow-mode)

;;; flow-mode.el ends here
