#!/usr/bin/env bash
# Runs the tilc-ptx GPU tests (tests/gpu.rs: SIMT kernels on the emulator and on the GPU,
# compared) with TILC_REQUIRE_GPU=1, so that a missing driver or GPU fails the run.
#
#   crates/tilc-ptx/gpu-check.sh --prepare DIR   # here (needs cargo and ptxas, no GPU): build the
#                                                # test binary into DIR, plus the PTX and cubins of
#                                                # every tested kernel group for every target
#   TILC_PTX_TEST_BINS=DIR crates/tilc-ptx/gpu-check.sh
#                                                # on a GPU machine without cargo: run what
#                                                # --prepare built
#   crates/tilc-ptx/gpu-check.sh                 # on a GPU machine with cargo
#
# The test loads PTX through the driver's JIT; where the driver is too old for the PTX version it
# falls back to DIR's cubin for the same PTX. Keep DIR under an ignored path (target/).
set -uo pipefail
cd "$(dirname "$0")/../.."

if [[ "${1:-}" == "--prepare" ]]; then
    out="${2:?usage: gpu-check.sh --prepare DIR}"
    command -v cargo >/dev/null || { echo "gpu-check: cargo not found; --prepare needs cargo"; exit 2; }
    mkdir -p "$out"
    out="$(cd "$out" && pwd)"
    bin=$(cargo test -p tilc-ptx --test gpu --no-run --message-format=json 2>/dev/null \
        | python3 -c 'import sys, json
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "gpu":
        print(m["executable"])')
    [[ -n "$bin" ]] || { echo "gpu-check: cargo test --no-run built no gpu test binary"; exit 1; }
    cp "$bin" "$out/gpu" && strip "$out/gpu" 2>/dev/null
    echo "gpu-check: prepared $out/gpu"
    TILC_PTX_PREPARE_DIR="$out" "$out/gpu" --ignored --exact prepare_cubins --quiet || exit 1
    ls "$out"
    du -sh "$out"
    exit 0
fi

export TILC_REQUIRE_GPU=1
echo "gpu-check: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

if [[ -n "${TILC_PTX_TEST_BINS:-}" ]]; then
    export TILC_PTX_CUBIN_DIR="${TILC_PTX_CUBIN_DIR:-$TILC_PTX_TEST_BINS}"
    "$TILC_PTX_TEST_BINS/gpu" --nocapture --test-threads=1
    status=$?
else
    command -v cargo >/dev/null || { echo "gpu-check: no cargo; use --prepare elsewhere and TILC_PTX_TEST_BINS here"; exit 2; }
    cargo test -p tilc-ptx --test gpu -- --nocapture --test-threads=1
    status=$?
fi
[[ $status == 0 ]] && echo "gpu-check: all tilc-ptx GPU tests passed" || echo "gpu-check: FAILED"
exit $status
