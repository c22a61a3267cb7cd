#!/usr/bin/env bash
# Re-checks the "canonical bytes with common msgpack libraries" table of docs/protocol.md:
# each program encodes every valid vector's message with one library and the options the
# table names, and prints how many frames came out byte-identical. Not part of the test
# suite (it fetches Go, npm and crates.io packages); run it when a library's version in
# the table changes. A missing toolchain is skipped;
# PYTHON names an interpreter that has msgpack (e.g. .venv/bin/python).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VECTORS="$HERE/../../../protocol/vectors.json"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

echo "== Python msgpack"
"${PYTHON:-python3}" - "$VECTORS" <<'PY'
import json, sys
import msgpack

def conv(v):
    if isinstance(v, list):
        return [conv(x) for x in v]
    if isinstance(v, dict):
        if "$int" in v: return int(v["$int"])
        if "$float" in v: return float(v["$float"])
        if "$bin" in v: return bytes.fromhex(v["$bin"])
        if "$repeat" in v: return v["$repeat"][0] * v["$repeat"][1]
        return {k: conv(x) for k, x in v.items()}
    return v

cases = [c for c in json.load(open(sys.argv[1]))["valid"] if c.get("hex")]
bad = [c["name"] for c in cases if msgpack.packb(conv(c["message"])) != bytes.fromhex(c["hex"])[4:]]
print(f"msgpack {msgpack.version}: ok={len(cases) - len(bad)} bad={bad}")
PY

if command -v go >/dev/null; then
    echo "== Go vmihailenco/msgpack/v5"
    (cd "$HERE/go" && go run . "$VECTORS" && go run . "$VECTORS" compact)
fi
if command -v npm >/dev/null; then
    echo "== JavaScript @msgpack/msgpack"
    cp "$HERE/js/package.json" "$HERE/js/check.js" "$WORK/"
    (cd "$WORK" && npm install --silent >/dev/null && node check.js "$VECTORS" '{}' \
        && BIG=1 node check.js "$VECTORS" '{"useBigInt64": true}')
fi
if command -v cargo >/dev/null; then
    echo "== Rust rmp-serde"
    CARGO_TARGET_DIR="$WORK/target" cargo run --quiet --release \
        --manifest-path "$HERE/rust/Cargo.toml" -- "$VECTORS"
fi
