//! Model-set resolution from an arbitrary `manifest.json` (first byte:
//! which files the request overrides, whether the manifest exists at all,
//! and the precision asked for). The directory holds small stand-in model files, so that entries
//! naming them reach the sha256 check, matching or not.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use gstspeakrs::models::{ModelSet, ModelSetRequest, Precision};
use libfuzzer_sys::fuzz_target;

/// Per process: libFuzzer's parallel jobs must not share the manifest.
static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("speakrs-fuzz-manifest-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).expect("temp dir");
    // Contents "seg", "emb", "plda": the seeds' sha256 sums are of these.
    for (name, body) in [("segmentation.onnx", "seg"), ("campplus.onnx", "emb"), ("sub/plda.npz", "plda")] {
        std::fs::write(dir.join(name), body).expect("stand-in model");
    }
    dir
});

fuzz_target!(|data: &[u8]| {
    let Some((&flags, manifest)) = data.split_first() else { return };
    let dir = DIR.as_path();
    let path = dir.join("manifest.json");
    if flags & 8 == 0 {
        std::fs::write(&path, manifest).expect("write manifest");
    } else {
        let _ = std::fs::remove_file(&path);
    }
    let pick = |bit: u8, name: &str| (flags & bit != 0).then(|| dir.join(name));
    let request = ModelSetRequest {
        dir: Some(dir.to_path_buf()),
        segmentation: pick(1, "segmentation.onnx"),
        embedding: pick(2, "campplus.onnx"),
        plda: pick(4, "sub/plda.npz"),
        precision: if flags & 16 == 0 { Precision::Fp32 } else { Precision::Int8 },
    };
    if let Ok(set) = ModelSet::resolve(&request) {
        assert_eq!(set.dir, dir);
    }
});
