//! Model files, checksums, the ONNX Runtime environment and shared sessions.
//! Knows nothing of GStreamer; the engine asks it for ready sessions.

mod error;
pub mod gpu;
pub mod manifest;
pub mod paths;
pub mod pool;
pub mod provider;
pub mod runtime;
pub mod voices;

pub use error::ModelError;
pub use manifest::{ModelSet, ModelSetRequest, Precision, SegmentationParts};
pub use pool::{SessionGuard, SharedSession};
pub use provider::Mode;
pub use runtime::SessionConfig;

/// The command that prepares models and ONNX Runtime, named in every error.
pub const SETUP_COMMAND: &str = "scripts/setup.sh";
