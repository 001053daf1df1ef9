#!/usr/bin/env bash
# Prints the README command named NAME: the body of the fenced block that follows the line
# `<!-- readme-command: NAME -->` in README.md. CI runs what this prints, so the README's
# commands are the ones tested and cannot drift from them.
#   scripts/readme-command.sh demo|test [README]
set -euo pipefail

[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: scripts/readme-command.sh NAME [README.md]" >&2; exit 2; }
name="$1"
readme="${2:-$(dirname "$0")/../README.md}"

# The marker must be followed at once by the opening fence; the block ends at the next fence.
body=$(awk -v marker="<!-- readme-command: $name -->" '
  state == 0 && $0 == marker { state = 1; next }
  state == 1 { if ($0 ~ /^```/) { state = 2; next } exit 3 }
  state == 2 && /^```/ { found = 1; exit }
  state == 2 { print }
  END { if (!found) exit 3 }
' "$readme") || { echo "readme-command: no fenced block after '<!-- readme-command: $name -->' in $readme" >&2; exit 1; }

if [ -z "${body//[[:space:]]/}" ]; then
  echo "readme-command: the block after '<!-- readme-command: $name -->' in $readme is empty" >&2
  exit 1
fi
printf '%s\n' "$body"
