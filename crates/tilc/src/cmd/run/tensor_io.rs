//! `.npy` and `.safetensors` reading and writing for `tilc run`: the code lives in the library
//! ([`tilc::io`]) so that the embedding API's `Tensor` shares it.

pub use tilc::io::*;
