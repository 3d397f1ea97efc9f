//! `CpuKernel::launch_buffers`: the zero-copy launch over borrowed packed buffers gives the
//! same outputs as `launch`, and refuses buffers that are too short or outputs passed read-only.

mod common;
use common::*;
use tilc_cpu::{BufferArg, PackedTensor, TENSOR_PADDING};
use tilc_vm::{ArgValue, HostTensor};

fn tensor(args: &[ArgValue], i: usize) -> &HostTensor {
    match &args[i] {
        ArgValue::Tensor(t) => t,
        other => panic!("argument {i} is {other:?}"),
    }
}

#[test]
fn launch_buffers_matches_launch_and_checks_buffers() {
    let seed = base_seed();
    let k = example("gemm_w3a8.tl", "gemm_w3a8", &["BM=32", "BN=64", "G=16"]);
    let cpu = compile(&k);
    let (m, n, kk) = (5i64, 70i64, 48i64);
    let args = random_args(&k, &[("m", ArgValue::Int(m)), ("n", ArgValue::Int(n)), ("k", ArgValue::Int(kk))], seed);
    let mut want = args.clone();
    cpu.launch(&mut want).unwrap();

    // Parameters: m, n, k, a, a_scale, w, w_scale, c.
    let image = |i: usize| {
        let t = tensor(&args, i);
        let mut bytes = t.to_packed();
        bytes.resize(bytes.len() + TENSOR_PADDING, 0xAA);
        (t.dtype, t.shape.clone(), bytes)
    };
    let ins: Vec<_> = (3..7).map(image).collect();
    let (cd, cs, mut c) = image(7);
    {
        let mut bargs: Vec<BufferArg<'_>> = vec![BufferArg::Int(m), BufferArg::Int(n), BufferArg::Int(kk)];
        bargs.extend(ins.iter().map(|(d, s, b)| BufferArg::Input { dtype: *d, shape: s, bytes: b }));
        bargs.push(BufferArg::Output { dtype: cd, shape: &cs, bytes: &mut c });
        cpu.launch_buffers(&mut bargs).unwrap();
    }
    let got = PackedTensor::from_packed(cd, cs.clone(), &c).unwrap().to_host();
    assert_eq!(&got, tensor(&want, 7), "seed {seed}");

    // An output passed read-only, and a buffer without its padding, are refused before running.
    let mut bargs: Vec<BufferArg<'_>> = vec![BufferArg::Int(m), BufferArg::Int(n), BufferArg::Int(kk)];
    bargs.extend(ins.iter().map(|(d, s, b)| BufferArg::Input { dtype: *d, shape: s, bytes: b }));
    bargs.push(BufferArg::Input { dtype: cd, shape: &cs, bytes: &c });
    let e = cpu.launch_buffers(&mut bargs).unwrap_err();
    assert!(e.message.contains("`c` is an output of the kernel and must be passed writable"), "{}", e.message);

    let (wd, ws, wb) = &ins[2];
    let short = &wb[..wb.len() - 1];
    let mut c2 = c.clone();
    let mut bargs: Vec<BufferArg<'_>> = vec![BufferArg::Int(m), BufferArg::Int(n), BufferArg::Int(kk)];
    bargs.extend(ins[..2].iter().map(|(d, s, b)| BufferArg::Input { dtype: *d, shape: s, bytes: b }));
    bargs.push(BufferArg::Input { dtype: *wd, shape: ws, bytes: short });
    bargs.push(BufferArg::Input { dtype: ins[3].0, shape: &ins[3].1, bytes: &ins[3].2 });
    bargs.push(BufferArg::Output { dtype: cd, shape: &cs, bytes: &mut c2 });
    let e = cpu.launch_buffers(&mut bargs).unwrap_err();
    assert!(e.message.contains("the buffer of `w` holds"), "{}", e.message);
}
