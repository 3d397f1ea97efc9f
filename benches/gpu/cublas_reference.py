#!/usr/bin/env python3
"""cuBLAS reference for benches/gpu: PyTorch f16 and bf16 matmul at the shapes of the tilc GPU
bench (GEMV m = 1, GEMM m = 16, 128, 4096; k = 4096; n in {4096, 12288, 14336}), timed the same
way: CUDA events around single launches after a warm-up, the median of many, inputs rotating
through enough copies that their total exceeds twice the L2 cache. Prints a markdown table with
the same columns as the tilc bench (time, TFLOP/s, GB/s, % of measured copy bandwidth, % of the
tensor-core peak).

    python3 benches/gpu/cublas_reference.py [--quick] [--markdown FILE]

Without PyTorch or without a GPU it prints 'skipped: ...' and exits 0.
"""

import argparse
import statistics
import sys

# Dense tensor-core operations per clock per SM for 16-bit floats, by compute capability major
# (as in benches/gpu/main.rs).
TC_OPS_PER_CLOCK_PER_SM = {9: 4096, 10: 8192, 12: 512}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="n = 4096 only; m = 1 and 128")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("skipped: PyTorch is not installed")
        return 0
    if not torch.cuda.is_available():
        print("skipped: PyTorch sees no CUDA device")
        return 0

    dev = torch.device("cuda:0")
    props = torch.cuda.get_device_properties(dev)
    l2 = getattr(props, "L2_cache_size", 50 << 20)
    sms = props.multi_processor_count
    clock_hz = None
    try:
        import subprocess

        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=clocks.max.sm", "--format=csv,noheader,nounits", "-i", "0"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        clock_hz = float(out.splitlines()[0]) * 1e6
    except Exception:
        pass
    ops = TC_OPS_PER_CLOCK_PER_SM.get(props.major, 1024)
    peak = ops * sms * clock_hz if clock_hz else None

    def time_ms(fn, sets, warmup=3):
        for i in range(warmup):
            fn(i % sets)
        torch.cuda.synchronize()
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn(0)
        end.record()
        torch.cuda.synchronize()
        estimate = max(start.elapsed_time(end), 1e-3)
        iters = int(min(max(300.0 / estimate, 20), 500))
        samples = []
        done = 0
        while done < iters:
            n = min(50, iters - done)
            # Let the host queue the batch before it starts (as the tilc bench's spin kernel).
            torch.cuda._sleep(int(2e6))
            events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(n)]
            for j, (s, e) in enumerate(events):
                s.record()
                fn((done + j) % sets)
                e.record()
            torch.cuda.synchronize()
            samples += [s.elapsed_time(e) for s, e in events]
            done += n
        return statistics.median(samples)

    # Measured copy bandwidth (read + write), as the tilc bench measures it.
    a = torch.empty(1 << 30, dtype=torch.uint8, device=dev)
    b = torch.empty_like(a)
    bw = 2 * a.numel() / (time_ms(lambda i: b.copy_(a), 1) * 1e-3)
    del a, b

    ms = [1, 128] if args.quick else [1, 16, 128, 4096]
    ns = [4096] if args.quick else [4096, 12288, 14336]
    k = 4096
    lines = [
        f"GPU: {props.name} (sm_{props.major}{props.minor}, {sms} SMs, L2 {l2 >> 20} MiB), torch {torch.__version__}, "
        f"CUDA {torch.version.cuda}; measured copy bandwidth {bw / 1e9:.0f} GB/s; tensor-core peak "
        + (f"{peak / 1e12:.0f} TFLOP/s (16-bit)" if peak else "unknown (no nvidia-smi clock)"),
        "",
        "| format | kernel | shape | time (µs) | TFLOP/s | GB/s | % of measured BW | % of TC peak |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dtype, name in [(torch.float16, "f16"), (torch.bfloat16, "bf16")]:
        for m in ms:
            for n in ns:
                set_bytes = 2 * (m * k + k * n + m * n)
                sets = max(2, -(-2 * l2 // set_bytes))
                sets = min(sets, max(1, int(torch.cuda.mem_get_info()[0] // 4 // set_bytes)))
                xs = [torch.randn(m, k, dtype=dtype, device=dev) for _ in range(sets)]
                ws = [torch.randn(k, n, dtype=dtype, device=dev) for _ in range(sets)]
                outs = [torch.empty(m, n, dtype=dtype, device=dev) for _ in range(sets)]
                t = time_ms(lambda i: torch.matmul(xs[i], ws[i], out=outs[i]), sets)
                seconds = t * 1e-3
                flops = 2 * m * n * k
                gbs = set_bytes / seconds / 1e9
                tc = f"{100 * flops / seconds / peak:.1f}" if peak else "—"
                lines.append(
                    f"| {name} × {name} | `torch.matmul` (cuBLAS) | m={m} n={n} k={k} | {t * 1e3:.1f} | "
                    f"{flops / seconds / 1e12:.1f} | {gbs:.0f} | {100 * gbs * 1e9 / bw:.1f} | {tc} |"
                )
                print(lines[-1], file=sys.stderr)
                del xs, ws, outs
    table = "\n".join(lines) + "\n"
    print(table, end="")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
