//! Default locations. The set-up script writes to the same places, so the
//! element needs no environment to find models or ONNX Runtime.

use std::path::PathBuf;

/// The ONNX Runtime release the set-up installs and `ort`'s `api-23` expects.
pub const ORT_VERSION: &str = "1.23.2";

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

/// The ONNX Runtime library to load: `ORT_DYLIB_PATH`, else the set-up's copy.
pub fn ort_library() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH").filter(|d| !d.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => data_dir()
            .join("onnxruntime")
            .join(format!("libonnxruntime.so.{ORT_VERSION}")),
    }
}
