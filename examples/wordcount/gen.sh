#!/bin/sh
# gen.sh DIR [FILES] [WORDS] [SEED] — write FILES text files (default 20) of
# about WORDS random words each (default 2000) into DIR, for the word-count
# examples. The same SEED (default 1) gives the same files.
set -eu
dir=${1:?usage: gen.sh DIR [FILES] [WORDS] [SEED]}
files=${2:-20}
words=${3:-2000}
seed=${4:-1}
case "$files$words$seed" in *[!0-9]*) echo "gen.sh: FILES, WORDS and SEED are numbers" >&2; exit 2;; esac
mkdir -p "$dir"
awk -v dir="$dir" -v files="$files" -v words="$words" -v seed="$seed" 'BEGIN {
    n = split("flow task map reduce expand partial combine group plan run cache store " \
              "river stone cloud leaf ember harbor lantern meadow orbit pixel quartz " \
              "signal thunder velvet willow yonder zephyr amber birch cedar delta", vocab, " ")
    srand(seed)
    for (f = 1; f <= files; f++) {
        name = sprintf("%s/part-%05d.txt", dir, f)
        # file sizes vary, so the largest file is worth finding
        count = int(words / 2 + rand() * words)
        line = ""
        for (w = 1; w <= count; w++) {
            line = line (line == "" ? "" : " ") vocab[1 + int(rand() * n)]
            if (w % 12 == 0) { print line > name; line = "" }
        }
        if (line != "") print line > name
        close(name)
    }
}'
echo "gen.sh: $files files in $dir"
