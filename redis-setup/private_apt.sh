#!/usr/bin/env bash
# apt with a private copy of this machine's sources (each "deb" entry with its
# "deb-src" twin) and private state in a folder of ours: the machine's own apt
# configuration and package lists stay untouched, and no root is needed to download.
#
# Sourced (by redis-setup/shared.sh), it defines prepare_private_apt and private_apt,
# working in $APT_DIR. Run as a command, it downloads packages without installing them:
#   redis-setup/private_apt.sh download <folder> <package>...

private_apt() {
  apt-get -q -o Dir::Etc::SourceList="$APT_DIR/sources.list" \
    -o Dir::Etc::SourceParts="$APT_DIR/sources.list.d" \
    -o Dir::State::Lists="$APT_DIR/lists" -o Dir::Cache="$APT_DIR/cache" \
    -o APT::Sandbox::User="$(id -un)" "$@"
}

prepare_private_apt() {  # status 1 where there is no apt
  command -v apt-get >/dev/null || return 1
  local sources_list='' sources_parts='' file
  eval "$(apt-config shell sources_list Dir::Etc::sourcelist/f sources_parts Dir::Etc::sourceparts/d)"
  rm -rf "$APT_DIR/sources.list.d"
  mkdir -p "$APT_DIR/sources.list.d" "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
  # One-line format: keep each "deb" line and add its "deb-src" twin.
  { cat "$sources_list" "$sources_parts"/*.list 2>/dev/null || true; } |
    sed -n 's/^[[:space:]]*deb[[:space:]]\(.*\)$/deb \1\ndeb-src \1/p' >"$APT_DIR/sources.list"
  # deb822 format: "Types: deb" becomes "Types: deb deb-src".
  for file in "$sources_parts"/*.sources; do
    [[ -e $file ]] || continue
    sed 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb deb-src/' "$file" \
      >"$APT_DIR/sources.list.d/$(basename "$file")"
  done
  printf '%s\n' "Reading the package index through apt (a private copy of this machine's sources)..."
  # Some of the machine's sources may publish no source packages; those fail alone.
  private_apt update >"$APT_DIR/update.log" 2>&1 || true
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then  # run as a command
  set -euo pipefail
  [[ ${1:-} == download && $# -ge 3 ]] || { echo "usage: $0 download <folder> <package>..." >&2; exit 2; }
  mkdir -p "$2"
  APT_DIR=$(cd "$2" && pwd)/apt
  prepare_private_apt || { echo "private_apt.sh: no apt-get here" >&2; exit 1; }
  cd "$2" && shift 2
  private_apt download "$@" >"$APT_DIR/download.log" 2>&1 ||
    { echo "private_apt.sh: cannot download $* (see $APT_DIR/download.log)" >&2; exit 1; }
fi
