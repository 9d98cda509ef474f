#!/usr/bin/env bash
# Every command's --help ends with an example, and the manual page carries it too: the command
# paths come from the binary's own completion table, so a new command without an example fails
# here. Usage: help_examples_test.sh ASSENT_BINARY
set -euo pipefail
bin=$1
export ASAN_OPTIONS=detect_leaks=0
paths=$("$bin" completion bash | sed -n 's/^    "\([a-z -]*\)") words=.*/\1/p')
failed=0 n=0
while IFS= read -r path; do
  [[ -z "$path" ]] && continue
  n=$((n + 1))
  # shellcheck disable=SC2086
  help=$("$bin" $path --help 2>&1) || { echo "FAIL assent $path --help exits non-zero"; failed=1; continue; }
  grep -q "^Example:" <<<"$help" || { echo "FAIL assent $path --help has no example"; failed=1; continue; }
  grep -A1 "^Example:" <<<"$help" | tail -1 | grep -q "^  assent " \
    || { echo "FAIL assent $path --help: the example is not an assent command line"; failed=1; }
done <<<"$paths"
man=$("$bin" man)
sections=$(grep -c '^\.SS ' <<<"$man")
examples=$(grep -c '^Example:' <<<"$man")
[[ "$sections" -eq "$examples" ]] || { echo "FAIL the manual page has $sections commands and $examples examples"; failed=1; }
[[ $n -ge 40 ]] || { echo "FAIL only $n command paths found"; failed=1; }
((failed)) && exit 1
echo "$n commands, each with an example; 1 passed, 0 failed"
