#!/bin/sh
# Install hook of the safe-upgrade plugin (minimal until the packaging issue: prebuilt
# downloads are not published yet). It puts the binary in $HELM_PLUGIN_DIR/bin, from
#   1. HELM_SAFE_UPGRADE_BIN: a path to an already built binary (offline installs), or
#   2. a build from source with cargo, when a Rust toolchain is present,
# then sets up the companion plugin safe-rollback next to this one.
set -eu
mode="${1:-install}"
: "${HELM_PLUGIN_DIR:?HELM_PLUGIN_DIR is not set: run this through helm plugin install}"
bin="$HELM_PLUGIN_DIR/bin/helm-safe-upgrade"
mkdir -p "$HELM_PLUGIN_DIR/bin"

if [ -n "${HELM_SAFE_UPGRADE_BIN:-}" ]; then
  cp "$HELM_SAFE_UPGRADE_BIN" "$bin.tmp" && chmod 755 "$bin.tmp" && mv "$bin.tmp" "$bin"
elif command -v cargo >/dev/null 2>&1; then
  echo "$mode: building helm-safe-upgrade from source with cargo (a few minutes)..."
  cargo build --release --locked --quiet --manifest-path "$HELM_PLUGIN_DIR/Cargo.toml" --bin helm-safe-upgrade
  cp "$HELM_PLUGIN_DIR/target/release/helm-safe-upgrade" "$bin.tmp" && mv "$bin.tmp" "$bin"
elif [ ! -x "$bin" ]; then
  echo "error: no helm-safe-upgrade binary: set HELM_SAFE_UPGRADE_BIN=/path/to/helm-safe-upgrade or install Rust (cargo), then run: helm plugin uninstall safe-upgrade && helm plugin install <source>" >&2
  exit 1
fi
"$bin" --version >/dev/null

# Companion plugin safe-rollback (helm-facts §2.6): same binary, dispatches on
# HELM_PLUGIN_NAME. HELM_PLUGINS is not set in Helm 4 hooks, so derive it.
plugins_dir=$(dirname "$HELM_PLUGIN_DIR")
main_base=$(basename "$HELM_PLUGIN_DIR")
comp="$plugins_dir/safe-rollback"
if [ -e "$comp" ] && [ ! -f "$comp/.installed-by-safe-upgrade" ]; then
  echo "safe-rollback is already installed separately at $comp; leaving it alone" >&2
  exit 0
fi
rm -rf "$comp"
mkdir -p "$comp/bin"
cp "$HELM_PLUGIN_DIR/plugins/safe-rollback/plugin.yaml" "$comp/plugin.yaml"
ln -s "../../$main_base/bin/helm-safe-upgrade" "$comp/bin/helm-safe-upgrade"
: > "$comp/.installed-by-safe-upgrade"
echo "$mode: installed helm-safe-upgrade and the companion plugin safe-rollback"
