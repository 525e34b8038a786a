;;; eglot_e2e.el --- flow-mode with eglot and flowc lsp, end to end  -*- lexical-binding: t; -*-

;; Run by tests/suites/72-lsp.sh:
;;   FLOWC=... FILE=main.flow emacs -Q --batch -l editors/emacs/flow-mode.el -l tests/lsp/eglot_e2e.el
;; Prints PASS/FAIL lines: flow-mode is registered in `eglot-server-programs' (with
;; `flow-flowc-program'); eglot connects to `flowc lsp' for a flow-mode buffer; the
;; diagnostic of the error in FILE reaches flymake, with its hint.  Exits 2 (with a
;; SKIP line) when eglot is not installed.

;;; Code:

(require 'package)
(add-to-list (quote package-directory-list) "/usr/share/emacs/site-lisp/elpa") ; Debian elpa-* packages
(package-initialize)
(unless (require 'eglot nil t)
  (princ "SKIP eglot: eglot is not installed (Emacs 29 has it; before: apt-get install elpa-eglot)\n")
  (kill-emacs 2))

(defun flow-e2e-report (ok name detail)
  (princ (if ok (format "PASS eglot: %s\n" name) (format "FAIL eglot: %s: %S\n" name detail))))

(setq flow-flowc-program (getenv "FLOWC"))
(let ((entry (assoc 'flow-mode eglot-server-programs)))
  (flow-e2e-report (and entry (equal (funcall (cdr entry) nil) (list (getenv "FLOWC") "lsp")))
                   "flow-mode in eglot-server-programs" entry))

(find-file (getenv "FILE"))
(flow-e2e-report (eq major-mode 'flow-mode) "a .flow file opens in flow-mode" major-mode)
(condition-case err
    (progn
      (eglot-ensure)
      ;; eglot-ensure connects from post-command-hook; in batch, run it
      (run-hooks 'post-command-hook)
      (let ((deadline (+ (float-time) 20)) diags)
        (while (and (not (setq diags (flymake-diagnostics))) (< (float-time) deadline))
          (accept-process-output nil 0.1))
        (flow-e2e-report (eglot-current-server) "eglot connected to flowc lsp" nil)
        (let ((d (car diags)))
          (flow-e2e-report (and d (string-match-p "unknown name 'ad'" (flymake-diagnostic-text d))
                                (string-match-p "did you mean 'add'" (flymake-diagnostic-text d))
                                (= (line-number-at-pos (flymake-diagnostic-beg d)) 3))
                           "the diagnostic of an error, with its hint, in flymake"
                           (and d (flymake-diagnostic-text d)))))
      (let ((server (eglot-current-server)))
        (when server (eglot-shutdown server))))
  (error (flow-e2e-report nil "eglot" err)))
(kill-emacs 0)

;;; eglot_e2e.el ends here
