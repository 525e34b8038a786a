#!/bin/sh
# Checker robustness: 80 deterministic mutations of the repository's .flow programs
# (tokens deleted, duplicated, replaced, swapped) must each give exit 0 or 1 from
# `flowc --check` — never a crash, a sanitizer report or a hang.
command -v python3 > /dev/null || { echo "SKIP checker-fuzz: no python3"; exit 0; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
FLOWC="$FLOWC" TMP="$tmp" python3 - <<'PY'
import glob, os, random, subprocess
random.seed(20261121)
files = sorted(glob.glob('tests/errors/*.flow') + glob.glob('tests/plans/*.flow') +
               glob.glob('tests/run/*.flow') + glob.glob('examples/*/*.flow'))
srcs = [open(f, encoding='utf-8', errors='replace').read() for f in files]
words = ' '.join(srcs).split() or ['x']
bad = []
for it in range(80):
    k = random.randrange(len(srcs))
    toks = srcs[k].split(' ')
    for _ in range(random.randint(1, 4)):
        i, op = random.randrange(len(toks)), random.random()
        if op < 0.3 and len(toks) > 1: del toks[i]
        elif op < 0.6: toks.insert(i, random.choice(words))
        elif op < 0.8: toks[i] = random.choice(words)
        else:
            j = random.randrange(len(toks)); toks[i], toks[j] = toks[j], toks[i]
    # keep the file beside its original so relative library paths still resolve
    path = os.path.join(os.path.dirname(files[k]), '.fuzz_%d.flow' % os.getpid())
    with open(path, 'w') as f: f.write(' '.join(toks))
    try:
        r = subprocess.run([os.environ['FLOWC'], '--check', path], capture_output=True, timeout=20)
        why = None if r.returncode in (0, 1) and b'Sanitizer' not in r.stderr and \
              b'runtime error' not in r.stderr else 'exit %d: %s' % (r.returncode, r.stderr[-300:])
    except subprocess.TimeoutExpired:
        why = 'timeout'
    os.remove(path)
    if why:
        bad.append('mutation %d of %s: %s' % (it, files[k], why))
print('PASS checker-fuzz' if not bad else 'FAIL checker-fuzz: ' + bad[0])
PY
