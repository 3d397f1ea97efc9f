#!/usr/bin/env bash
# The GPU check and benchmark, in one script, from the repository root of a GPU machine:
#
#   benches/gpu/run.sh [--quick] [--no-tests] [--no-bench]
#
# 1. the tilc-cuda runtime tests;
# 2. tests/gpu_library.rs: every library kernel on the GPU against the interpreter;
# 3. `tilc run --target cuda` on examples/gemm_w3a8.tl against `--target interp`, bit for bit;
# 4. the bench (benches/gpu/main.rs): the library at LLM shapes, a markdown table;
# 5. the cuBLAS reference (benches/gpu/cublas_reference.py), when PyTorch is importable.
#
# Binaries: from the bundle benches/gpu/prepare.sh made ($TILC_GPU_BUNDLE, default
# target/gpu-bundle, or that path with .tar.xz, unpacked here), else built here with cargo
# (prepare.sh). Results (logs and tables) go to $OUT when set (the device runner's folder), else
# target/gpu-results. TILC_REQUIRE_GPU=1 is set, so a test that finds no GPU fails instead of
# skipping. The exit status is non-zero when any step failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"

quick=""; tests=1; bench=1
for a in "$@"; do
    case "$a" in
        --quick) quick="--quick" ;;
        --no-tests) tests=0 ;;
        --no-bench) bench=0 ;;
        *) echo "usage: benches/gpu/run.sh [--quick] [--no-tests] [--no-bench]"; exit 2 ;;
    esac
done

bundle="${TILC_GPU_BUNDLE:-target/gpu-bundle}"
if [[ ! -d "$bundle" && -f "$bundle.tar.xz" ]]; then
    mkdir -p "$(dirname "$bundle")" && tar -C "$(dirname "$bundle")" -xJf "$bundle.tar.xz"
fi
if [[ ! -d "$bundle" ]]; then
    if command -v cargo >/dev/null; then
        benches/gpu/prepare.sh "$bundle" || exit 1
    else
        echo "run: no bundle at $bundle and no cargo; build one elsewhere with benches/gpu/prepare.sh"
        exit 2
    fi
fi
bundle="$(cd "$bundle" && pwd)"
results="${OUT:-target/gpu-results}"
mkdir -p "$results"
results="$(cd "$results" && pwd)"

export TILC_REQUIRE_GPU=1
export TILC_REPO_ROOT="$root"
export TILC_CACHE_DIR="${TILC_CACHE_DIR:-$root/target/gpu-cache}"
export LD_LIBRARY_PATH="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
[[ -z "${TILC_PTXAS:-}" && -x .tools/nvcc/nvidia/cu13/bin/ptxas ]] && export TILC_PTXAS="$root/.tools/nvcc/nvidia/cu13/bin/ptxas"

{
    echo "run: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
    echo "run: ptxas ${TILC_PTXAS:-not found: the driver compiles the PTX}"
} | tee "$results/machine.txt"

failed=()
step() {
    local name="$1"; shift
    echo "=== $name"
    local start=$SECONDS
    "$@" > >(tee "$results/$name.log") 2>&1
    local status=$?
    echo "=== $name: exit $status after $((SECONDS - start)) s"
    [[ $status == 0 ]] || failed+=("$name")
}

if [[ $tests == 1 ]]; then
    step tilc-cuda env TILC_CUDA_TEST_BINS="$bundle/tilc-cuda" crates/tilc-cuda/gpu-check.sh
    step gpu_library "$bundle/gpu_library" --nocapture --test-threads=1
    cli() {
        local common=(examples/gemm_w3a8.tl --random 7 -D BM=32 -D BN=64 --arg m=33 --arg n=96 --arg k=256)
        "$bundle/tilc" run "${common[@]}" --target interp --out c="$results/c_interp.npy" &&
            "$bundle/tilc" run "${common[@]}" --target cuda --out c="$results/c_cuda.npy" --expect c="$results/c_interp.npy" --tol 0
    }
    step tilc-run-cuda cli
fi
if [[ $bench == 1 ]]; then
    step gpu-bench "$bundle/gpu-bench" $quick --markdown "$results/gpu_bench.md"
    if python3 -c 'import torch' 2>/dev/null; then
        step cublas-reference python3 benches/gpu/cublas_reference.py $quick --markdown "$results/cublas_reference.md"
    else
        echo "run: PyTorch is not importable; no cuBLAS reference" | tee "$results/cublas_reference.md"
    fi
fi

if [[ ${#failed[@]} == 0 ]]; then
    echo "run: every step passed; results in $results"
else
    echo "run: FAILED: ${failed[*]}; logs in $results"
    exit 1
fi
