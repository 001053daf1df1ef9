#!/usr/bin/env bash
# Checks weft .deb files as an operator would meet them (root; run by .ci/run):
#   scripts/check-deb.sh dist/weft_<version>_<arch>.deb...
# Every package: lintian has no error or warning (overrides: packaging/deb/lintian-overrides),
# and its binary's ELF machine matches its Architecture. A package for this machine's
# architecture is installed with dpkg -i: `weft version`, dpkg --verify, systemd-analyze
# verify of the installed unit, service neither enabled nor started, no key made; then
# dpkg -r leaves only the conffiles and dpkg --purge leaves nothing (file lists compared).
# A package for another architecture is not installed: its binary runs `weft version`
# under qemu-user when qemu-<arch>-static and a cross libc are installed (setup.sh ci),
# and the check says SKIP otherwise.
set -euo pipefail

fail() { echo "check-deb: FAIL: $*" >&2; exit 1; }
say() { echo "check-deb: $*"; }

[ $# -ge 1 ] || { echo "usage: scripts/check-deb.sh DEB..." >&2; exit 2; }
[ "$(id -u)" = 0 ] || fail "needs root (installs and removes the package)"
command -v lintian >/dev/null || fail "lintian not installed (scripts/setup.sh ci installs it)"
version=$(node -p 'require("./package.json").version' 2>/dev/null) || fail "run from the checkout (package.json)"
host_arch=$(dpkg --print-architecture)
work=$(mktemp -d)
installed_here=false
cleanup() {
  # A failed check must not leave the package it installed behind.
  if $installed_here && dpkg-query -W -f='${db:Status-Status}' weft 2>/dev/null | grep -qv '^not-installed$'; then
    echo "check-deb: purging the weft package this check installed" >&2
    dpkg --purge weft >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# ELF e_machine (bytes 18-19, little-endian) for a Debian architecture.
elf_machine_for() {
  case "$1" in
    amd64) echo 62 ;;
    arm64) echo 183 ;;
    *) fail "no ELF machine known for architecture $1" ;;
  esac
}
elf_machine() { od -An -tu2 -j18 -N2 "$1" | tr -d ' '; }

# What the package could touch, as a sorted list: its files, the systemd links an
# `enable` would make, its state dir, and its dpkg records.
snapshot() {
  {
    find /usr/bin/weft /etc/weft /lib/systemd/system/weft.service /usr/share/doc/weft \
      /usr/share/man/man1/weft.1.gz /usr/share/lintian/overrides/weft /var/lib/weft 2>/dev/null || true
    find /etc/systemd/system -name 'weft*' 2>/dev/null || true
    ls /var/lib/dpkg/info/weft.* 2>/dev/null || true
    dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' weft 2>/dev/null || true
  } | sort
}

check_installed() {
  local deb=$1
  if dpkg-query -W -f='${db:Status-Status}' weft 2>/dev/null | grep -qv '^not-installed$'; then
    fail "a weft package is already on this machine ($(dpkg-query -W -f='${Version} ${db:Status-Status}' weft)); remove it first, this check must not replace it"
  fi
  snapshot >"$work/before"

  installed_here=true
  dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i $deb"; }
  say "installed $(dpkg-query -W -f='${Package} ${Version} ${Architecture}' weft)"
  dpkg -L weft | sort >"$work/listed"

  out=$(weft version) || fail "weft version exited $?"
  [ "$(command -v weft)" = /usr/bin/weft ] || fail "weft on PATH is $(command -v weft), not /usr/bin/weft"
  echo "$out" | grep -qx "weft $version" || fail "weft version printed: $out (expected weft $version)"
  say "weft version: $(echo "$out" | tr '\n' ' ')"

  dpkg --verify weft || fail "dpkg --verify weft: installed files differ from md5sums"
  unit=/lib/systemd/system/weft.service
  grep -q '^ExecStart=/usr/bin/weft agent ' "$unit" || fail "$unit does not start /usr/bin/weft agent"
  verify=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify $unit: $verify"
  [ -z "$verify" ] || fail "systemd-analyze verify $unit: $verify"
  say "systemd-analyze verify $unit: clean"
  [ "$(systemctl is-enabled weft.service 2>/dev/null || true)" = disabled ] || fail "weft.service is $(systemctl is-enabled weft.service 2>&1), expected disabled"
  [ ! -e /etc/weft/key ] || fail "the package made /etc/weft/key; the admin makes the cluster key"
  [ ! -e /var/lib/weft ] || fail "/var/lib/weft exists after install: something started the agent"
  for f in /etc/weft/net-conf.json /etc/weft/weft.env; do
    grep -qx "$f" /var/lib/dpkg/info/weft.conffiles || fail "$f is not a conffile"
  done
  weft check-config --net-conf /etc/weft/net-conf.json >/dev/null || fail "the example /etc/weft/net-conf.json is not a valid config"

  # Files appear between remove and purge as an agent would leave them.
  dpkg -r weft >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -r weft"; }
  [ "$(dpkg-query -W -f='${db:Status-Status}' weft)" = config-files ] || fail "after dpkg -r: status $(dpkg-query -W -f='${db:Status-Status}' weft), expected config-files"
  while read -r f; do
    [ -d "$f" ] && continue
    case "$f" in
      /etc/weft/net-conf.json | /etc/weft/weft.env) [ -f "$f" ] || fail "dpkg -r removed conffile $f" ;;
      *) [ ! -e "$f" ] || fail "dpkg -r left $f" ;;
    esac
  done <"$work/listed"
  say "dpkg -r: binary, unit and docs gone, conffiles kept"

  mkdir -p /var/lib/weft && echo state >/var/lib/weft/node-id   # as a run of the agent leaves it
  dpkg --purge weft >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg --purge weft"; }
  snapshot >"$work/after"
  if ! diff -u "$work/before" "$work/after" >"$work/diff"; then
    cat "$work/diff" >&2
    fail "dpkg --purge left something behind (diff of before/after above)"
  fi
  while read -r f; do
    [ ! -e "$f" ] || [ -d "$f" ] || fail "dpkg --purge left $f"
  done <"$work/listed"
  say "dpkg --purge: nothing left ($(wc -l <"$work/listed") paths listed by dpkg -L checked, state dir removed)"
}

check_foreign() {
  local deb=$1 arch=$2 root="$work/root-$2"
  mkdir -p "$root"
  dpkg-deb -x "$deb" "$root"
  local qemu sysroot
  case "$arch" in
    arm64) qemu=qemu-aarch64-static sysroot=/usr/aarch64-linux-gnu ;;
    amd64) qemu=qemu-x86_64-static sysroot=/usr/x86-64-linux-gnu ;;
  esac
  if ! command -v "$qemu" >/dev/null || [ ! -e "$sysroot/lib/libc.so.6" ]; then
    say "SKIP running the $arch binary: needs $qemu and a $arch libc in $sysroot (scripts/setup.sh ci installs them on amd64)"
    return 0
  fi
  out=$("$qemu" -L "$sysroot" "$root/usr/bin/weft" version) || fail "$arch weft version under $qemu exited $?"
  echo "$out" | grep -qx "weft $version" || fail "$arch weft version printed: $out"
  say "$arch weft version under $qemu: $(echo "$out" | tr '\n' ' ')"
}

for deb in "$@"; do
  [ -f "$deb" ] || fail "$deb not found"
  say "== $deb"
  arch=$(dpkg-deb -f "$deb" Architecture)
  [ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "$deb has Version $(dpkg-deb -f "$deb" Version), package.json says $version"

  lintian --fail-on error,warning --pedantic "$deb" >"$work/lintian" 2>&1 || {
    cat "$work/lintian" >&2
    fail "lintian $deb: errors or warnings (above)"
  }
  # Listed, not judged: with --show-overrides lintian counts overridden tags as failures.
  overridden=$(lintian --show-overrides "$deb" 2>/dev/null | sed -n 's/^O: weft: //p' | paste -sd ';' || true)
  say "lintian: no errors or warnings; overridden (packaging/deb/lintian-overrides): ${overridden:-none}"

  dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/bin/weft >"$work/weft.bin"
  want=$(elf_machine_for "$arch")
  got=$(elf_machine "$work/weft.bin")
  [ "$got" = "$want" ] || fail "$deb: /usr/bin/weft has ELF machine $got, Architecture $arch needs $want"
  say "/usr/bin/weft: ELF machine $got ($arch)"

  if [ "$arch" = "$host_arch" ]; then check_installed "$deb"; else check_foreign "$deb" "$arch"; fi
done
say "all passed"
