#!/usr/bin/env bash
# Runs the tilc-cuda tests on a GPU machine, from the repository root, with TILC_REQUIRE_GPU=1
# so that a missing driver or GPU fails the run instead of skipping every test.
#
#   crates/tilc-cuda/gpu-check.sh                 # cargo test -p tilc-cuda -- --nocapture
#   crates/tilc-cuda/gpu-check.sh --prepare DIR   # here (no GPU needed): build the test
#                                                 # binaries and cubins into DIR
#   TILC_CUDA_TEST_BINS=DIR crates/tilc-cuda/gpu-check.sh
#                                                 # on a GPU machine without cargo (or without
#                                                 # the crates offline): run what --prepare built
#
# The prepared binaries load libcuda.so at run time and need only glibc 2.34 or newer; DIR also
# holds the test PTX assembled to cubins for sm_90, sm_100 and sm_120, for the cubin test on
# machines without ptxas. Keep DIR under an ignored path (target/) and carry it to the GPU machine.
set -uo pipefail
cd "$(dirname "$0")/../.."

ptxas_default=".tools/nvcc/nvidia/cu13/bin/ptxas"

if [[ "${1:-}" == "--prepare" ]]; then
    out="${2:?usage: gpu-check.sh --prepare DIR}"
    command -v cargo >/dev/null || { echo "gpu-check: cargo not found; --prepare needs cargo"; exit 2; }
    mkdir -p "$out"
    # The test executables cargo builds, read from its JSON messages.
    bins=$(cargo test -p tilc-cuda --no-run --message-format=json 2>/dev/null \
        | python3 -c 'import sys, json
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] != ["bin"]:
        print(m["executable"])')
    [[ -n "$bins" ]] || { echo "gpu-check: cargo test --no-run built no test binaries"; exit 1; }
    for bin in $bins; do
        name=$(basename "$bin" | sed 's/-[0-9a-f]*$//')
        cp "$bin" "$out/$name" && strip "$out/$name" 2>/dev/null
        echo "gpu-check: prepared $out/$name"
    done
    ptxas="${TILC_PTXAS:-$ptxas_default}"
    if [[ -x "$ptxas" ]]; then
        for arch in sm_90 sm_100 sm_120; do
            "$ptxas" -arch=$arch crates/tilc-cuda/tests/common/kernels.ptx -o "$out/kernels.$arch.cubin" \
                && echo "gpu-check: prepared $out/kernels.$arch.cubin"
        done
    else
        echo "gpu-check: no ptxas at $ptxas; the cubin test will skip unless the GPU machine has one"
    fi
    du -sh "$out"
    exit 0
fi

export TILC_REQUIRE_GPU=1
[[ -x "$ptxas_default" && -z "${TILC_PTXAS:-}" ]] && export TILC_PTXAS="$PWD/$ptxas_default"

echo "gpu-check: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

if [[ -n "${TILC_CUDA_TEST_BINS:-}" ]]; then
    export TILC_TEST_CUBIN_DIR="${TILC_TEST_CUBIN_DIR:-$TILC_CUDA_TEST_BINS}"
    status=0
    for bin in "$TILC_CUDA_TEST_BINS"/*; do
        [[ -x "$bin" && ! "$bin" == *.cubin ]] || continue
        echo "gpu-check: running $(basename "$bin")"
        "$bin" --nocapture --test-threads=1 || status=1
    done
    [[ $status == 0 ]] && echo "gpu-check: all tilc-cuda tests passed" || echo "gpu-check: FAILED"
    exit $status
fi

if ! command -v cargo >/dev/null; then
    echo "gpu-check: cargo not found on this machine; build the tests elsewhere with"
    echo "  crates/tilc-cuda/gpu-check.sh --prepare target/gpu-check"
    echo "then run here: TILC_CUDA_TEST_BINS=target/gpu-check crates/tilc-cuda/gpu-check.sh"
    exit 2
fi
cargo test -p tilc-cuda -- --nocapture --test-threads=1
status=$?
[[ $status == 0 ]] && echo "gpu-check: all tilc-cuda tests passed" || echo "gpu-check: FAILED (cargo exit $status)"
exit $status
