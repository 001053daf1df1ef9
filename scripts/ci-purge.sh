#!/usr/bin/env bash
# Strips this machine of the Debian packages `scripts/setup.sh test` installs, so that CI
# then runs the README's commands as on a machine that never had them (root, apt).
#   scripts/ci-purge.sh [--dry-run]
# Safe by construction: a package is purged only if apt, simulating its purge, removes
# nothing outside setup.sh's list and nothing Essential; the others are kept and named.
# What the setup list does not cover is never touched (no autoremove). The README's
# commands install everything back.
set -euo pipefail
cd "$(dirname "$0")/.."

dry=false
[ "${1:-}" = --dry-run ] && dry=true
[ "$(id -u)" = 0 ] || { echo "ci-purge: needs root" >&2; exit 1; }
command -v apt-get >/dev/null || { echo "ci-purge: needs apt-get" >&2; exit 1; }

mapfile -t listed < <(bash scripts/setup.sh --list test)
declare -A in_list=()
for p in "${listed[@]}"; do in_list[$p]=1; done

# Packages `apt-get -s purge ARGS` would remove, one a line.
would_remove() { LC_ALL=C apt-get -s purge "$@" 2>/dev/null | sed -n 's/^Purg \([^ :]*\).*/\1/p'; }

purge=()
for p in "${listed[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = installed ] || continue
  if [ "$(dpkg-query -W -f='${Essential}' "$p")" = yes ]; then
    echo "ci-purge: keeping $p (Essential)"
    continue
  fi
  outside=()
  while read -r r; do [ -n "$r" ] && [ -z "${in_list[$r]:-}" ] && outside+=("$r"); done < <(would_remove "$p")
  if [ ${#outside[@]} -gt 0 ]; then
    echo "ci-purge: keeping $p (purging it would also remove: ${outside[*]})"
    continue
  fi
  purge+=("$p")
done

if [ ${#purge[@]} -eq 0 ]; then
  echo "ci-purge: nothing to purge"
  exit 0
fi
# The set as a whole must pass the same test as each member did.
for r in $(would_remove "${purge[@]}"); do
  [ -n "${in_list[$r]:-}" ] || { echo "ci-purge: refusing: purging ${purge[*]} would also remove $r" >&2; exit 1; }
done
echo "ci-purge: purging ${purge[*]}"
$dry && exit 0
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${purge[@]}" >/dev/null
for p in "${purge[@]}"; do
  s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ -z "$s" ] || [ "$s" = not-installed ] || { echo "ci-purge: $p is still $s after purge" >&2; exit 1; }
done
echo "ci-purge: done"
