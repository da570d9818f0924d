use std::path::PathBuf;

use super::SETUP_COMMAND;

/// Everything that can go wrong before inference starts. Each message names
/// the file or library concerned and what fixes it.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file {path} is missing ({what}); run `{SETUP_COMMAND}` to prepare the default models, or point `model-dir` at a model set")]
    Missing { path: PathBuf, what: String },
    #[error("model file {path} is corrupt: sha256 {actual}, manifest expects {expected}; re-run `{SETUP_COMMAND}` to convert it again")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("model manifest {path} is unreadable: {reason}; re-run `{SETUP_COMMAND}`")]
    Manifest { path: PathBuf, reason: String },
    #[error("model {path} has the wrong shape: {reason}")]
    Shape { path: PathBuf, reason: String },
    #[error("cannot read {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("ONNX Runtime library could not be loaded from {path}: {reason}. Run `{SETUP_COMMAND}` to install onnxruntime 1.23.2, or set ORT_DYLIB_PATH to a libonnxruntime.so of version 1.23 or newer")]
    Runtime { path: PathBuf, reason: String },
    #[error("ONNX Runtime failed on {path}: {reason}")]
    Session { path: PathBuf, reason: String },
    #[error("mode `{mode}` is not available: {reason}")]
    Provider { mode: String, reason: String },
    #[error("inference failed: {0}")]
    Inference(String),
}
