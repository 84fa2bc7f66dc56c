#!/bin/sh
# Release archives of helm-safe-upgrade, as install-binary.sh expects them. Used by
# .github/workflows/release.yml and by tests/plugin_install.rs, so the names and the layout
# the release publishes are the ones the install hook downloads.
#
#   package-release.sh archive VERSION PLATFORM BINARY OUTDIR
#       -> OUTDIR/helm-safe-upgrade-VERSION-PLATFORM.tar.gz (.zip for windows-*)
#   package-release.sh checksums VERSION DIR
#       -> DIR/helm-safe-upgrade-VERSION-checksums.txt (sha256sum format, every archive in DIR)
#
# PLATFORM is <os>-<arch>: linux-amd64, linux-arm64, macos-amd64, macos-arm64, windows-amd64.
# An archive holds, at its root (Helm 3 wants plugin.yaml there):
# plugin.yaml, plugins/, install-binary.sh, plugin.complete, README.md, LICENSE (if any),
# bin/helm-safe-upgrade[.exe] and .release-archive, the marker that makes the install hook
# use the shipped binary; so an extracted archive installs offline with
# `helm plugin install ./dir`.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$@"; else shasum -a 256 "$@"; fi
}

case "${1:-}" in
  archive)
    [ $# -eq 5 ] || { echo "usage: $0 archive VERSION PLATFORM BINARY OUTDIR" >&2; exit 2; }
    version=$2 platform=$3 binary=$4 outdir=$5
    exe="" ext=tar.gz
    case "$platform" in windows-*) exe=.exe ext=zip ;; esac
    mkdir -p "$outdir"
    outdir=$(cd "$outdir" && pwd)
    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' EXIT
    mkdir -p "$stage/bin" "$stage/plugins/safe-rollback"
    cp "$root/plugin.yaml" "$root/install-binary.sh" "$root/plugin.complete" "$root/README.md" "$stage/"
    if [ -f "$root/LICENSE" ]; then cp "$root/LICENSE" "$stage/"; fi
    cp "$root/plugins/safe-rollback/plugin.yaml" "$stage/plugins/safe-rollback/"
    cp "$binary" "$stage/bin/helm-safe-upgrade$exe"
    chmod 755 "$stage/bin/helm-safe-upgrade$exe" "$stage/plugin.complete" "$stage/install-binary.sh"
    printf 'helm-safe-upgrade %s %s\n' "$version" "$platform" >"$stage/.release-archive"
    name="helm-safe-upgrade-$version-$platform.$ext"
    rm -f "$outdir/$name"
    if [ "$ext" = zip ]; then
      if command -v zip >/dev/null 2>&1; then
        (cd "$stage" && zip -qr "$outdir/$name" .)
      else
        (cd "$stage" && 7z a -tzip -bso0 "$outdir/$name" .)
      fi
    else
      tar -czf "$outdir/$name" -C "$stage" .
    fi
    echo "$outdir/$name"
    ;;
  checksums)
    [ $# -eq 3 ] || { echo "usage: $0 checksums VERSION DIR" >&2; exit 2; }
    version=$2 dir=$3
    sums="helm-safe-upgrade-$version-checksums.txt"
    (
      cd "$dir"
      for f in helm-safe-upgrade-"$version"-*.tar.gz helm-safe-upgrade-"$version"-*.zip; do
        if [ -f "$f" ]; then sha256 "$f"; fi
      done
    ) >"$dir/$sums.tmp"
    [ -s "$dir/$sums.tmp" ] || { echo "no archives of $version in $dir" >&2; rm -f "$dir/$sums.tmp"; exit 1; }
    mv "$dir/$sums.tmp" "$dir/$sums"
    echo "$dir/$sums"
    ;;
  *)
    echo "usage: $0 archive VERSION PLATFORM BINARY OUTDIR | checksums VERSION DIR" >&2
    exit 2
    ;;
esac
