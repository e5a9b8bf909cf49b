#!/usr/bin/env bash
# Builds tokio_mt_server and tokio_placed offline from Debian's crates:
#   bench/peers/tokio-mt/build.sh [OUTPUT]   (default /tmp/peers/tokio_mt_server;
#   tokio_placed goes next to it)
# Needs cargo and `apt-get install -y cargo librust-tokio-dev librust-libc-dev`.
# The build happens in a copy under /tmp (BUILD_DIR); nothing is written here.
set -euo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${1:-/tmp/peers/tokio_mt_server}
BUILD_DIR=${BUILD_DIR:-/tmp/corio-peers-build/tokio-mt}
REG=/usr/share/cargo/registry
command -v cargo >/dev/null || { echo "build.sh: cargo not found (apt-get install -y cargo)" >&2; exit 1; }
ls -d "$REG"/tokio-1.* >/dev/null 2>&1 || { echo "build.sh: apt-get install -y librust-tokio-dev" >&2; exit 1; }
mkdir -p "$BUILD_DIR/src/bin" "$BUILD_DIR/.cargo" "$(dirname "$OUT")"
cp "$DIR/Cargo.toml" "$BUILD_DIR/"
cp "$DIR/src/"*.rs "$BUILD_DIR/src/"
cp "$DIR/src/bin/"*.rs "$BUILD_DIR/src/bin/"
cat >"$BUILD_DIR/.cargo/config.toml" <<CONF
[source.crates-io]
replace-with = "debian-packages"
[source.debian-packages]
directory = "$REG"
[net]
offline = true
CONF
cd "$BUILD_DIR"
CARGO_TARGET_DIR="$BUILD_DIR/target" cargo build --release --offline
cp "$BUILD_DIR/target/release/tokio_mt_server" "$OUT"
cp "$BUILD_DIR/target/release/tokio_placed" "$(dirname "$OUT")/tokio_placed"
echo "built $OUT and $(dirname "$OUT")/tokio_placed" >&2
