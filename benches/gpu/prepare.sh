#!/usr/bin/env bash
# Builds, on a machine with cargo (no GPU needed), everything benches/gpu/run.sh runs on a GPU
# machine that has no cargo, into one folder and one archive:
#
#   benches/gpu/prepare.sh [DIR]        # default DIR: target/gpu-bundle
#
# DIR/ gets:
#   gpu_library     the test binary of tests/gpu_library.rs (every library kernel vs the interpreter)
#   gpu-bench       the bench binary of benches/gpu/main.rs
#   tilc            the CLI (for `tilc run --target cuda`)
#   tilc-cuda/      the tilc-cuda test binaries and test cubins (crates/tilc-cuda/gpu-check.sh --prepare)
#   lib/            the shared libraries they need beyond glibc (libffi, libz, libzstd, libstdc++, ...)
# and DIR.tar.xz holds the same, small enough to carry (the binaries link LLVM statically).
#
# Debug builds (the project's dev profile: dependencies optimised, tilc itself not): the GPU does
# the timed work, and the host-side launch cost is kept out of the timings by the bench itself.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-target/gpu-bundle}"
command -v cargo >/dev/null || { echo "prepare: cargo not found"; exit 2; }
[[ -f .tools/env ]] && source .tools/env
rm -rf "$out" "$out.tar.xz"
mkdir -p "$out/lib"

# The executables cargo built, from its JSON messages: "KIND NAME PATH" per line.
executables() {
    python3 -c 'import sys, json
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["target"]["kind"][0], m["target"]["name"], m["executable"])'
}

echo "prepare: building the gpu_library test, the gpu bench and the tilc CLI"
built=$(cargo build -p tilc --bin tilc --bench gpu --message-format=json | executables)
built+=$'\n'$(cargo test -p tilc --test gpu_library --no-run --message-format=json | executables)
while read -r kind name path; do
    case "$kind:$name" in
        bin:tilc) cp "$path" "$out/tilc" ;;
        bench:gpu) cp "$path" "$out/gpu-bench" ;;
        test:gpu_library) cp "$path" "$out/gpu_library" ;;
        *) continue ;;
    esac
done <<< "$built"
for f in tilc gpu-bench gpu_library; do
    [[ -x "$out/$f" ]] || { echo "prepare: $f was not built"; exit 1; }
    strip "$out/$f" 2>/dev/null || true
done

echo "prepare: building the tilc-cuda tests"
crates/tilc-cuda/gpu-check.sh --prepare "$out/tilc-cuda"

# Shared libraries beyond the C library itself: the GPU machine may lack LLVM's dependencies.
for f in "$out"/tilc "$out"/gpu-bench "$out"/gpu_library "$out"/tilc-cuda/*; do
    [[ -x "$f" && ! "$f" == *.cubin ]] || continue
    ldd "$f" 2>/dev/null | awk '/=> \// {print $3}'
done | sort -u | while read -r lib; do
    case "$(basename "$lib")" in
        libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libgcc_s.so*) ;;
        *) cp -L "$lib" "$out/lib/" ;;
    esac
done

tar -C "$(dirname "$out")" -cJf "$out.tar.xz" "$(basename "$out")"
du -sh "$out" "$out.tar.xz"
echo "prepare: done; carry $out.tar.xz (or $out) to the GPU machine and run benches/gpu/run.sh there"
