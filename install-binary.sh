#!/bin/sh
# Install and update hook of the safe-upgrade plugin (plugin.yaml runs it through `sh`, so
# it needs no exec bit). It puts the binary in $HELM_PLUGIN_DIR/bin, taking the first of:
#   1. HELM_SAFE_UPGRADE_BIN=/path/to/helm-safe-upgrade   an already built binary;
#   2. HELM_SAFE_UPGRADE_ARCHIVE=/path/to/<archive>        a release archive on disk, checked
#      against a *checksums.txt file next to it when there is one (air-gapped installs);
#   3. the binary shipped inside an extracted release archive (it holds .release-archive);
#   4. a download of the release archive for this OS and architecture, matching the plugin's
#      version, checked against the release's sha256 checksums file;
#   5. a build from source with cargo, when the download is impossible and a Rust toolchain
#      and the sources are present (HELM_SAFE_UPGRADE_FROM_SOURCE=1 builds without trying
#      the download).
# Then it sets up the companion plugin safe-rollback next to this one (one plugin per command).
#
# helm keeps a plugin whose install hook failed, so every failure says
# so and gives the commands that uninstall and install again. A binary is only moved into
# place once it is verified and runs. `helm plugin update` leaves no binary behind before
# it runs this hook (the plugin's ignored files are gone), so a failed update is a broken
# install too.
#
# Names shared with .github/workflows/release.yml (a test checks they agree):
#   helm-safe-upgrade-<version>-<os>-<arch>.tar.gz   (.zip for windows)
#   helm-safe-upgrade-<version>-checksums.txt         (sha256sum format)
set -eu

HELM_SAFE_UPGRADE_REPO="${HELM_SAFE_UPGRADE_REPO:-https://github.com/helm-safe-upgrade/helm-safe-upgrade}"

mode="${1:-install}"
: "${HELM_PLUGIN_DIR:?HELM_PLUGIN_DIR is not set: run this through helm plugin install}"

say() { printf '%s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
fail() {
  printf 'error: %s\n' "$1" >&2
  if [ -n "${2:-}" ]; then printf 'hint: %s\n' "$2" >&2; fi
  exit 1
}

# --- what and where ---------------------------------------------------------------------

version=$(sed -n 's/^version:[[:space:]]*"\{0,1\}\([^"[:space:]]*\).*/\1/p' "$HELM_PLUGIN_DIR/plugin.yaml" | head -n 1)
[ -n "$version" ] || fail "cannot read the version from $HELM_PLUGIN_DIR/plugin.yaml" "the plugin's files are damaged: install it again"

case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=macos ;;
  MINGW* | MSYS* | CYGWIN* | Windows_NT) os=windows ;;
  *) os=$(uname -s) ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) arch=$(uname -m) ;;
esac
exe=""
ext=tar.gz
if [ "$os" = windows ]; then exe=.exe; ext=zip; fi

asset="helm-safe-upgrade-$version-$os-$arch.$ext"
sums="helm-safe-upgrade-$version-checksums.txt"
bin="$HELM_PLUGIN_DIR/bin/helm-safe-upgrade$exe"

# Where the plugin was installed from, for the reinstall command in failure messages.
# A local-directory install is a symlink to the directory; a git install keeps .git.
source_hint="<the same source>"
if [ -L "$HELM_PLUGIN_DIR" ]; then
  source_hint=$(cd "$HELM_PLUGIN_DIR" && pwd -P)
elif [ -d "$HELM_PLUGIN_DIR/.git" ] && url=$(git -C "$HELM_PLUGIN_DIR" config --get remote.origin.url 2>/dev/null); then
  source_hint="$url   # Helm 4: add --verify=false"
fi

work=$(mktemp -d 2>/dev/null || mktemp -d -t helm-safe-upgrade)
on_exit() {
  rc=$?
  rm -rf "$work"
  [ "$rc" -eq 0 ] && return 0
  cat >&2 <<EOF
helm keeps a plugin whose $mode hook failed: safe-upgrade is installed but cannot run.
Fix the cause above, then install again:
  helm plugin uninstall safe-upgrade
  helm plugin install $source_hint
EOF
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- helpers ------------------------------------------------------------------------------

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d ' ' -f 1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d ' ' -f 1
  else
    return 1
  fi
}

# The sha256 listed for a file name in a sha256sum-format file ("<hex>  <name>" or "<hex> *<name>").
listed_sum() {
  awk -v n="$2" '{ f = $2; sub(/^\*/, "", f); if (f == n) { print $1; exit } }' "$1"
}

# verify FILE SUMS_FILE NAME: fails on a mismatch; nothing is installed then.
verify() {
  want=$(listed_sum "$2" "$3")
  [ -n "$want" ] || fail "$2 lists no checksum for $3" "use the checksums file of the same release as the archive"
  got=$(sha256_of "$1") || fail "neither sha256sum nor shasum is available to verify $3" "install coreutils (sha256sum) or perl's shasum, or verify the archive yourself and set HELM_SAFE_UPGRADE_ARCHIVE"
  if [ "$got" != "$want" ]; then
    fail "checksum mismatch for $3: expected sha256 $want, got $got; nothing was installed" \
      "the file is damaged or not the one the release published: download it again from $HELM_SAFE_UPGRADE_REPO/releases, and report it if this persists"
  fi
  say "$mode: sha256 of $3 verified"
}

# place BINARY DESCRIPTION: copy next to its final place, check that it runs, then move it in.
place() {
  mkdir -p "$HELM_PLUGIN_DIR/bin"
  tmp="$bin.$$.tmp"
  cp "$1" "$tmp" && chmod 755 "$tmp" || fail "cannot copy $1 to $HELM_PLUGIN_DIR/bin" "check the permissions of $HELM_PLUGIN_DIR"
  if ! reported=$("$tmp" --tool-version 2>&1); then
    rm -f "$tmp"
    fail "the helm-safe-upgrade binary $2 does not run here: $reported" "it may be built for another OS or architecture (this is $os-$arch)"
  fi
  mv -f "$tmp" "$bin"
  case "$reported" in
    *" $version") ;;
    *) warn "the binary reports '$reported' but the plugin is version $version" ;;
  esac
  say "$mode: installed $reported $2"
}

# install_archive ARCHIVE DESCRIPTION: the archive holds bin/helm-safe-upgrade at its root.
install_archive() {
  mkdir -p "$work/extract"
  case "$1" in
    *.zip)
      if command -v unzip >/dev/null 2>&1; then unzip -q "$1" -d "$work/extract"; else tar -xf "$1" -C "$work/extract"; fi ||
        fail "cannot extract $1" "check that it is a release archive (.zip) and that unzip or tar is installed" ;;
    *) tar -xzf "$1" -C "$work/extract" || fail "cannot extract $1" "check that it is a release archive (.tar.gz)" ;;
  esac
  found="$work/extract/bin/helm-safe-upgrade$exe"
  [ -f "$found" ] || fail "$1 holds no bin/helm-safe-upgrade$exe" "use the release archive for $os-$arch: $asset"
  place "$found" "$2"
}

fetch() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 --connect-timeout 15 -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -T 15 -t 3 -O "$2" "$1"
  else
    say "$mode: neither curl nor wget is installed, so nothing can be downloaded"
    return 1
  fi
}

# Returns non-zero when the download is impossible (the caller may build instead); a
# checksum mismatch is not that: it stops the install.
download() {
  case "$os-$arch" in
    linux-amd64 | linux-arm64 | macos-amd64 | macos-arm64 | windows-amd64) ;;
    *)
      say "$mode: no prebuilt binary is published for $os-$arch"
      return 1 ;;
  esac
  base="${HELM_SAFE_UPGRADE_DOWNLOAD_URL:-$HELM_SAFE_UPGRADE_REPO/releases/download/v$version}"
  base="${base%/}"
  say "$mode: downloading $base/$asset"
  if ! fetch "$base/$asset" "$work/$asset" || ! fetch "$base/$sums" "$work/$sums"; then
    say "$mode: the download from $base failed"
    return 1
  fi
  verify "$work/$asset" "$work/$sums" "$asset"
  install_archive "$work/$asset" "(downloaded release v$version)"
}

build() {
  if [ ! -f "$HELM_PLUGIN_DIR/Cargo.toml" ]; then
    say "$mode: no sources to build from in $HELM_PLUGIN_DIR"
    return 1
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    say "$mode: cargo is not installed, so it cannot be built from source"
    return 1
  fi
  say "$mode: building helm-safe-upgrade $version from source with cargo (a few minutes)"
  CARGO_TARGET_DIR="$HELM_PLUGIN_DIR/target" cargo build --release --locked --manifest-path "$HELM_PLUGIN_DIR/Cargo.toml" --bin helm-safe-upgrade ||
    fail "cargo build failed (its output is above)" "fix the build, or use a prebuilt binary: HELM_SAFE_UPGRADE_ARCHIVE=/path/to/$asset or HELM_SAFE_UPGRADE_BIN=/path/to/helm-safe-upgrade"
  place "$HELM_PLUGIN_DIR/target/release/helm-safe-upgrade$exe" "(built from source)"
}

offline_hint="offline: set HELM_SAFE_UPGRADE_ARCHIVE=/path/to/$asset (from $HELM_SAFE_UPGRADE_REPO/releases, with $sums next to it) or HELM_SAFE_UPGRADE_BIN=/path/to/helm-safe-upgrade; or install Rust (https://rustup.rs) to build from source"

# --- the binary ---------------------------------------------------------------------------

if [ -n "${HELM_SAFE_UPGRADE_BIN:-}" ]; then
  [ -f "$HELM_SAFE_UPGRADE_BIN" ] || fail "HELM_SAFE_UPGRADE_BIN=$HELM_SAFE_UPGRADE_BIN is not a file" "point it at a built helm-safe-upgrade binary, or unset it to download one"
  place "$HELM_SAFE_UPGRADE_BIN" "(from HELM_SAFE_UPGRADE_BIN)"
elif [ -n "${HELM_SAFE_UPGRADE_ARCHIVE:-}" ]; then
  archive="$HELM_SAFE_UPGRADE_ARCHIVE"
  [ -f "$archive" ] || fail "HELM_SAFE_UPGRADE_ARCHIVE=$archive is not a file" "point it at the release archive for $os-$arch: $asset"
  name=$(basename "$archive")
  checked=""
  for list in "$(dirname "$archive")"/*checksums.txt; do
    if [ -f "$list" ] && [ -n "$(listed_sum "$list" "$name")" ]; then
      verify "$archive" "$list" "$name"
      checked=1
      break
    fi
  done
  if [ -z "$checked" ]; then
    warn "$name is NOT verified: no *checksums.txt next to it lists it (put $sums from the same release next to the archive)"
  fi
  install_archive "$archive" "(from HELM_SAFE_UPGRADE_ARCHIVE)"
elif [ -f "$HELM_PLUGIN_DIR/.release-archive" ] && [ -f "$bin" ]; then
  say "$mode: using the binary shipped in this release archive"
elif [ "${HELM_SAFE_UPGRADE_FROM_SOURCE:-}" = 1 ]; then
  build || fail "HELM_SAFE_UPGRADE_FROM_SOURCE=1 but there is nothing to build with" "$offline_hint"
else
  download || build || fail "no helm-safe-upgrade binary: the download failed and it cannot be built here" "$offline_hint"
fi
"$bin" --tool-version >/dev/null || fail "the installed $bin does not run" "install again; $offline_hint"

# --- the companion plugin safe-rollback ---------------------------------------------------
# The same binary dispatches on HELM_PLUGIN_NAME. HELM_PLUGINS is not set in Helm 4's
# hooks, so the plugins dir is derived from HELM_PLUGIN_DIR. The delete hook in
# plugin.yaml removes the companion only when the marker says this hook made it.

plugins_dir=$(dirname "$HELM_PLUGIN_DIR")
main_base=$(basename "$HELM_PLUGIN_DIR")
comp="$plugins_dir/safe-rollback"
if [ -e "$comp" ] && [ ! -f "$comp/.installed-by-safe-upgrade" ]; then
  warn "safe-rollback is already installed separately at $comp; leaving it alone"
  exit 0
fi
rm -rf "$comp"
mkdir -p "$comp/bin"
cp "$HELM_PLUGIN_DIR/plugins/safe-rollback/plugin.yaml" "$comp/plugin.yaml"
# Relative links keep working when the helm data dir moves; `cp` where links are not
# available (Windows without developer mode).
ln -s "../../$main_base/bin/helm-safe-upgrade$exe" "$comp/bin/helm-safe-upgrade$exe" 2>/dev/null || cp "$bin" "$comp/bin/helm-safe-upgrade$exe"
ln -s "../$main_base/plugin.complete" "$comp/plugin.complete" 2>/dev/null || cp "$HELM_PLUGIN_DIR/plugin.complete" "$comp/plugin.complete"
: >"$comp/.installed-by-safe-upgrade"
say "$mode: set up the companion plugin safe-rollback (helm safe-rollback)"
