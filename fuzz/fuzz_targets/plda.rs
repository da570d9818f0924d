//! PLDA loading from arbitrary bytes in each layout `load_plda` accepts,
//! then `transform` on vectors of the right and a wrong dimension.
//! Input: a layout byte, then the files; all but the last are prefixed by
//! their length (u32 LE):
//!   0: one npz with all six arrays
//!   1: pyannote's xvec_transform.npz, then plda.npz
//!   2: plda_{mean1,mean2,lda,mu,tr,psi}.npy
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use gstspeakrs::engine::loaded::load_plda;
use libfuzzer_sys::fuzz_target;
use ndarray::Array2;

static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("speakrs-fuzz-plda-{}", std::process::id()));
    for layout in ["npz", "pyannote", "npy"] {
        std::fs::create_dir_all(dir.join(layout)).expect("temp dir");
    }
    dir
});

/// Splits `data` into `n` files: n - 1 length-prefixed, the last the rest.
fn split(mut data: &[u8], n: usize) -> Option<Vec<&[u8]>> {
    let mut files = Vec::new();
    for _ in 1..n {
        let len = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
        let body = data.get(4..4usize.checked_add(len)?)?;
        files.push(body);
        data = &data[4 + len..];
    }
    files.push(data);
    Some(files)
}

fn write(dir: &Path, names: &[&str], files: &[&[u8]]) {
    for (name, body) in names.iter().zip(files) {
        std::fs::write(dir.join(name), body).expect("write PLDA file");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&layout, rest)) = data.split_first() else { return };
    let path = match layout % 3 {
        0 => {
            let dir = DIR.join("npz");
            write(&dir, &["all.npz"], &[rest]);
            dir.join("all.npz")
        }
        1 => {
            let Some(files) = split(rest, 2) else { return };
            let dir = DIR.join("pyannote");
            write(&dir, &["xvec_transform.npz", "plda.npz"], &files);
            dir.join("plda.npz")
        }
        _ => {
            let Some(files) = split(rest, 6) else { return };
            let names = ["mean1", "mean2", "lda", "mu", "tr", "psi"].map(|n| format!("plda_{n}.npy"));
            let dir = DIR.join("npy");
            write(&dir, &names.each_ref().map(String::as_str), &files);
            dir
        }
    };
    let Ok(plda) = load_plda(&path) else { return };
    let d = plda.input_dim();
    // Rows: zero, the input bytes as values, and one far out.
    let x = Array2::from_shape_fn((3, d), |(r, c)| match r {
        0 => 0.0,
        1 => data[c % data.len()] as f32 - 128.0,
        _ => 1e30,
    });
    let fea = plda.transform(x.view()).expect("right dimension");
    assert_eq!(fea.dim(), (3, plda.lda_dim()));
    assert!(plda.transform(Array2::<f32>::zeros((1, d + 1)).view()).is_err());
});
