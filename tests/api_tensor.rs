//! The host `Tensor`: packed storage of any dtype, conversions, ndarray and `.npy`.

use ndarray::{Array2, ArrayD, IxDyn};
use tilc::{DType, Error, Tensor};

#[test]
fn sub_byte_tensors_are_packed_and_round_trip() {
    let values: Vec<f32> = (0..10).map(|i| (i % 8) as f32).collect();
    let t = Tensor::from_f32(DType::UInt(3), &[2, 5], &values).unwrap();
    assert_eq!(t.packed().len(), 4, "10 × 3 bits = 30 bits = 4 bytes");
    assert_eq!(t.to_f32_vec(), values);
    assert_eq!(t.get(&[1, 2]), Some(7.0));
    assert_eq!(t.get(&[2, 0]), None);
    // Element i is bits [3i, 3i + 3) of the little-endian stream.
    let word = u64::from_le_bytes([t.packed()[0], t.packed()[1], t.packed()[2], t.packed()[3], 0, 0, 0, 0]);
    let codes: Vec<u64> = (0..10).map(|i| (word >> (3 * i)) & 7).collect();
    assert_eq!(codes, (0..10).map(|i| (i % 8) as u64).collect::<Vec<_>>());
    assert_eq!(Tensor::from_packed(DType::UInt(3), &[2, 5], t.packed()).unwrap(), t);
}

#[test]
fn values_round_to_nearest_and_saturate() {
    let t = Tensor::from_f64(DType::Int(4), &[4], &[2.5, 3.5, 100.0, -100.0]).unwrap();
    assert_eq!(t.to_f64_vec(), vec![2.0, 4.0, 7.0, -8.0]);
    let t = Tensor::from_f32(DType::parse("f4e2m1").unwrap(), &[3], &[0.7, 5.0, 1e9]).unwrap();
    assert_eq!(t.to_f64_vec(), vec![0.5, 4.0, 6.0]);
}

#[test]
fn bad_sizes_and_codes_are_errors() {
    let e = Tensor::from_f32(DType::F32, &[2, 2], &[1.0; 3]).unwrap_err();
    assert!(matches!(e, Error::Tensor(_)));
    assert!(e.to_string().contains("3 values do not fill shape [2, 2] (4 elements)"), "{e}");
    let e = Tensor::from_codes(DType::UInt(3), &[2], &[1, 8]).unwrap_err();
    assert!(e.to_string().contains("code 0x8 at element 1 does not fit `u3`"), "{e}");
    let e = Tensor::zeros(DType::F32, &[usize::MAX, 4]).unwrap_err();
    assert!(e.to_string().contains("too large"), "{e}");
    let e = Tensor::from_packed(DType::UInt(4), &[3], &[0, 0, 0]).unwrap_err();
    assert!(e.to_string().contains("3 packed bytes for a `u4` tensor of shape [3], which takes 2"), "{e}");
    let e = Tensor::zeros(DType::F32, &[6]).unwrap().reshape(&[4, 2]).unwrap_err();
    assert!(e.to_string().contains("cannot reshape [6] (6 elements) to [4, 2] (8)"), "{e}");
}

#[test]
fn ndarray_interop() {
    let a = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64 * 0.25);
    let t = Tensor::from_array(DType::F16, &a).unwrap();
    assert_eq!(t.shape(), &[3, 4]);
    let back: ArrayD<f64> = t.to_array();
    assert_eq!(back, a.clone().into_dyn());
    // Any layout: a transposed view is read in its logical order.
    let tt = Tensor::from_array(DType::F32, &a.t()).unwrap();
    assert_eq!(tt.get(&[3, 2]), Some(a[[2, 3]]));
    let f: ArrayD<f32> = tt.to_array();
    assert_eq!(f.shape(), &[4, 3]);
    assert_eq!(f[IxDyn(&[1, 2])], 2.25);
}

#[test]
fn npy_save_and_load() {
    let dir = tempfile::tempdir().unwrap();
    for (i, name) in ["u3", "i8", "f16", "f6e3m2", "bf16"].iter().enumerate() {
        let d = DType::parse(name).unwrap();
        let t = Tensor::random(d, &[5, 7], i as u64).unwrap();
        let path = dir.path().join(format!("{name}.npy"));
        t.save_npy(&path).unwrap();
        assert_eq!(Tensor::load_npy(&path, d).unwrap(), t, "{name}");
    }
    // A u3 tensor saved as uint8 does not load as u2 when a value is out of range.
    let t = Tensor::from_codes(DType::UInt(3), &[2], &[1, 7]).unwrap();
    let path = dir.path().join("u3.npy");
    t.save_npy(&path).unwrap();
    let e = Tensor::load_npy(&path, DType::UInt(2)).unwrap_err();
    assert!(e.to_string().contains("element [1] is 7, which is not representable in `u2`"), "{e}");
    let e = Tensor::load_npy(dir.path().join("missing.npy"), DType::F32).unwrap_err();
    assert!(matches!(e, Error::Io { .. }));
}
