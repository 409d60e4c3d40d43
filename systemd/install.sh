#!/usr/bin/env bash
# Install (or upgrade) the appliance as a service; idempotent: a second run changes nothing.
#   sudo make install                      # this machine
#   make install DESTDIR=/tmp/root         # into a staging root (packaging, tests)
#   sudo make uninstall [PURGE=1]          # PURGE also removes config, tokens and models
# Config (/etc/appliance/appliance.toml) is created from the commented example when absent
# and never overwritten; state and installed models in /var/lib/appliance are kept.
set -euo pipefail

action=${1:-install}
here=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/opt/appliance}
CONFDIR=${CONFDIR:-/etc/appliance}
STATEDIR=${STATEDIR:-/var/lib/appliance}
UNITDIR=${UNITDIR:-/etc/systemd/system}
PYTHON=${PYTHON:-python3}
root="$DESTDIR"
changed=0

say() { echo "install: $*"; }

# Copy a file only when its content differs, atomically (temporary file, then rename).
put() {
  local src=$1 dst=$2 mode=${3:-0644}
  if [ -f "$dst" ] && cmp -s "$src" "$dst"; then return 0; fi
  install -d "$(dirname "$dst")"
  install -m "$mode" "$src" "$dst.new"
  sync "$dst.new" 2>/dev/null || true
  mv -f "$dst.new" "$dst"
  changed=1
  say "wrote $dst"
}

source_tree() {
  # The project as installed: what `pip install` needs, and the docs and units.
  (cd "$here" && find appliance tools pyproject.toml README.md Makefile systemd models/README.md \
     -type f ! -path '*/__pycache__/*' ! -name '*.pyc' | sort)
}

install_source() {
  local dest="$root$PREFIX/src"
  while read -r file; do put "$here/$file" "$dest/$file"; done < <(source_tree)
}

install_venv() {
  local venv="$root$PREFIX/.venv" stamp digest
  digest=$(source_tree_hash)
  stamp="$venv/.appliance-source"
  if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
    return 0
  fi
  [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
  # With the provenance extra: results are signed by default (provenance.enabled).
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$root$PREFIX/src[provenance]"
  echo "$digest" > "$stamp"
  changed=1
  say "installed the appliance into $venv"
}

source_tree_hash() {
  # Of the files we install, not of the folder: pip leaves build files beside them.
  (cd "$here" && source_tree | tr '\n' '\0' | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

install_config() {
  local conf="$root$CONFDIR/appliance.toml"
  if [ ! -e "$conf" ]; then
    put "$here/systemd/appliance.toml.example" "$conf" 0644
  fi
}

install_models() {
  local models="$root$STATEDIR/models" bundle
  install -d "$models"
  for bundle in "$here"/models/*/; do
    [ -f "$bundle/manifest.json" ] || continue
    local name; name=$(basename "$bundle")
    if [ ! -e "$models/$name" ]; then
      cp -a "$bundle" "$models/.$name.new"
      mv "$models/.$name.new" "$models/$name"
      changed=1
      say "copied bundle $name into $models"
    fi
  done
}

install_unit() {
  put "$here/systemd/appliance.service" "$root$UNITDIR/appliance.service"
  if [ -z "$DESTDIR" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --quiet appliance.service
    if [ "$changed" = 1 ]; then systemctl restart appliance.service; fi
  fi
}

uninstall() {
  if [ -z "$DESTDIR" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl disable --now --quiet appliance.service || true
  fi
  rm -f "$root$UNITDIR/appliance.service"
  rm -rf "$root$PREFIX"
  if [ "${PURGE:-0}" = 1 ]; then
    rm -rf "$root$CONFDIR" "$root$STATEDIR"
    say "removed the program, the config and the state"
  else
    say "removed the program; kept $CONFDIR and $STATEDIR (PURGE=1 removes them)"
  fi
}

case "$action" in
  install)
    install_source; install_venv; install_config; install_models; install_unit
    if [ "$changed" = 0 ]; then say "nothing to change"; else say "done"; fi ;;
  uninstall) uninstall ;;
  *) echo "usage: $0 install|uninstall" >&2; exit 2 ;;
esac
