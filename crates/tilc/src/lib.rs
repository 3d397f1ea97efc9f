//! `tilc`: a compiler and virtual machine for tile kernels over tensors of any bit width.
//!
//! This is the root crate: the public API that Rust users embed, and the `tilc` command-line
//! tool (`main.rs`). It is the only crate that does file IO, caching and threading policy; the
//! stages it drives live in their own crates (see `ARCHITECTURE.md`):
//! `tilc-base` (spans, diagnostics), `tilc-dtype` (element types), `tilc-layout` (the layout
//! algebra), `tilc-syntax` (the `.tl` front end), `tilc-vm` (the IR and its interpreter),
//! `tilc-cpu` (the Cranelift backend).
//!
//! # Embedding
//!
//! A [`Compiler`] compiles one kernel of a `.tl` source for a [`Target`] with compile-time
//! values; the [`Kernel`] it returns launches on host [`Tensor`]s, which hold any element type
//! packed (`u3`: 3 bits an element). Arguments follow the kernel's signature and are checked
//! against it before anything runs; outputs are passed with [`arg_mut`] and written in place.
//!
//! ```
//! use tilc::{Compiler, Target, Tensor, DType, arg, arg_mut};
//!
//! let source = "
//! kernel scale_add<B = 64>(n: i32, alpha: f32, x: global f32[n], y: global u4[n], z: out global f32[n])
//!     grid [cdiv(n, B)] warps 1 {
//!     let o = block.x * B;
//!     store z[o] = alpha * load x[o] : [B] + cast<f32>(load y[o] : [B]);
//! }";
//! let kernel = Compiler::new(Target::Cpu).no_cache().define("B", 32).compile_source("scale_add.tl", source, "scale_add")?;
//!
//! let n = 100;
//! let x = Tensor::from_f32(DType::F32, &[n], &vec![0.5; n])?;
//! let y = Tensor::from_f32(DType::UInt(4), &[n], &(0..n).map(|i| (i % 16) as f32).collect::<Vec<_>>())?;
//! let mut z = Tensor::zeros(DType::F32, &[n])?;
//! kernel.launch(&mut [arg(n as i32), arg(2.0f32), arg(&x), arg(&y), arg_mut(&mut z)])?;
//! assert_eq!(z.to_f32_vec()[17], 2.0 * 0.5 + 1.0);
//!
//! // A mismatch is an error value, never undefined behaviour:
//! let err = kernel.launch(&mut [arg(n as i32 + 1), arg(2.0f32), arg(&x), arg(&y), arg_mut(&mut z)]).unwrap_err();
//! assert!(err.to_string().contains("`x` has shape [100], the kernel expects [n] = [101]"));
//! # Ok::<(), tilc::Error>(())
//! ```
//!
//! [`Target::detect`] picks the best target of the machine: the GPU when a CUDA driver and a
//! Hopper or Blackwell device exist (kernels are then compiled to PTX and a cubin, launched
//! through `tilc-cuda`), else the CPU.
//! [`Compiler::autotune`] tries a kernel's candidate values (`BM in [32, 64, 128]`) on real
//! arguments and remembers the fastest per shape bucket in the [`cache`]; the same cache
//! records compiled kernels (`tilc cache list`).

pub mod cache;
mod compiler;
mod error;
pub mod io;
mod target;
mod tensor;
pub mod tune;

pub use cache::Cache;
pub use compiler::gpu::{BUFFER_PADDING, GpuCode, GpuParam, ParamAbi};
pub use compiler::{Arg, Compiler, Kernel, Launched, arg, arg_mut};
pub use error::{Error, Result};
pub use target::Target;
pub use tensor::{HostScalar, Tensor};
pub use tilc_base as base;
pub use tilc_dtype::DType;
pub use tune::{Trial, TuneOptions, Tuned};
