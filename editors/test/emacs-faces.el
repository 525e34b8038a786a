;;; emacs-faces.el --- run by tests/suites/70-editors.sh  -*- lexical-binding: t; -*-
;;
;;   emacs -Q --batch -l editors/emacs/flow-mode.el -l emacs-faces.el POSITIONS OUT
;;
;; For every "FILE LINE COL CLASS TOKEN" line of POSITIONS, writes to OUT the
;; faces at that place (space-separated, "-" for none) and the major mode.
;; Then, for every FILE, re-indents a copy with all indentation removed and
;; writes "indent FILE ok" or "indent FILE LINE: got N want M".

(let* ((positions (nth 0 command-line-args-left))
       (out-file (nth 1 command-line-args-left))
       (lines (with-temp-buffer
                (insert-file-contents positions)
                (split-string (buffer-string) "\n" t)))
       (files nil)
       (out nil))
  (setq command-line-args-left nil)
  (dolist (line lines)
    (let ((f (split-string line "\t")))
      (if (equal (car f) "MISSING")
          (push "MISSING" out)
        (let ((buf (find-file-noselect (nth 0 f))))
          (unless (member (nth 0 f) files) (push (nth 0 f) files))
          (with-current-buffer buf
            (font-lock-ensure)
            (goto-char (point-min))
            (forward-line (1- (string-to-number (nth 1 f))))
            (forward-char (1- (string-to-number (nth 2 f))))
            (let* ((face (get-text-property (point) 'face))
                   (faces (if (listp face) face (list face))))
              (push (format "%s %s"
                            (if faces (mapconcat #'symbol-name faces ",") "-")
                            major-mode)
                    out)))))))
  (dolist (file (reverse files))
    (with-temp-buffer
      (insert-file-contents file)
      (flow-mode)
      (let ((want (mapcar (lambda (l) (- (length l) (length (string-trim-left l))))
                          (split-string (buffer-string) "\n")))
            (bad nil))
        (goto-char (point-min))
        (while (re-search-forward "^[ \t]+" nil t) (replace-match ""))
        (indent-region (point-min) (point-max))
        (goto-char (point-min))
        (let ((n 0))
          (dolist (w want)
            (unless (or bad (looking-at "[ \t]*$") (= (current-indentation) w))
              (setq bad (format "%d: got %d want %d" (1+ n) (current-indentation) w)))
            (setq n (1+ n))
            (forward-line 1)))
        (push (format "indent %s %s" file (or bad "ok")) out))))
  (with-temp-file out-file
    (insert (mapconcat #'identity (reverse out) "\n") "\n")))
