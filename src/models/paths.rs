//! Default locations. The set-up script writes to the same places, so the
//! element needs no environment to find models or ONNX Runtime.

use std::path::PathBuf;

/// The ONNX Runtime release the set-up installs and `ort`'s `api-23` expects.
pub const ORT_VERSION: &str = "1.23.2";

/// The CUDA build the set-up installs for feature `cuda`: 1.31.1 is linked
/// against CUDA 13 (the 1.23 GPU build needs CUDA 12); it still serves API 23.
pub const ORT_CUDA_VERSION: &str = "1.31.1";

/// The MIGraphX (ROCm) build for feature `migraphx`: the newest on PyPI.
pub const ORT_MIGRAPHX_VERSION: &str = "1.27.1";

/// The ROCm release that MIGraphX build links (its provider's RUNPATH).
pub const ROCM_VERSION: &str = "7.2.4";

/// `$XDG_DATA_HOME/gst-speakrs` (default `~/.local/share/gst-speakrs`).
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("gst-speakrs");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    home.join(".local/share/gst-speakrs")
}

/// Where `model-dir` points by default; `GST_SPEAKRS_MODEL_DIR` overrides it.
pub fn default_model_dir() -> PathBuf {
    match std::env::var_os("GST_SPEAKRS_MODEL_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => data_dir().join("models"),
    }
}

/// The ONNX Runtime library to load: `ORT_DYLIB_PATH`, else the set-up's
/// GPU build for this build's GPU feature when installed, else the CPU one.
pub fn ort_library() -> PathBuf {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|d| !d.is_empty()) {
        return PathBuf::from(path);
    }
    let gpu_builds = [
        (cfg!(feature = "cuda"), "onnxruntime-cuda", ORT_CUDA_VERSION),
        (
            cfg!(feature = "migraphx"),
            "onnxruntime-migraphx",
            ORT_MIGRAPHX_VERSION,
        ),
    ];
    for (enabled, dir, version) in gpu_builds {
        let library = set_up_library(dir, version);
        if enabled && library.exists() {
            return library;
        }
    }
    set_up_library("onnxruntime", ORT_VERSION)
}

fn set_up_library(dir: &str, version: &str) -> PathBuf {
    data_dir()
        .join(dir)
        .join(format!("libonnxruntime.so.{version}"))
}

/// Where the set-up puts NVIDIA's CUDA wheels (`pip install --target`), so
/// the libraries lie in `nvidia/*/lib` below it.
pub fn cuda_library_dir() -> PathBuf {
    data_dir().join("cuda")
}
