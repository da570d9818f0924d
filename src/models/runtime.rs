//! One ONNX Runtime environment per process (ONNX Runtime allows no more),
//! and opening a session on it with the configured execution provider.
//! Sharing sessions between elements is the pool's (pool.rs).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use super::provider::{execution_providers, ProviderOptions};
use super::{paths, ModelError};

static ENVIRONMENT: Mutex<Option<Environment>> = Mutex::new(None);

/// The process-wide environment, loading the ONNX Runtime library on first
/// use. A failure is not cached, so fixing ORT_DYLIB_PATH and retrying works.
pub fn environment() -> Result<Environment, ModelError> {
    let mut env = lock(&ENVIRONMENT);
    if let Some(env) = env.as_ref() {
        return Ok(env.clone());
    }
    let library = paths::ort_library();
    if !library.exists() {
        return Err(ModelError::Runtime {
            path: library,
            reason: "no such file".into(),
        });
    }
    let builder = ort::init_from(&library).map_err(|e| ModelError::Runtime {
        path: library.clone(),
        reason: e.to_string(),
    })?;
    let built = builder
        .with_name("gst-speakrs")
        .with_telemetry(false)
        .build()
        .map_err(|e| ModelError::Runtime {
            path: library,
            reason: e.to_string(),
        })?;
    *env = Some(built.clone());
    Ok(built)
}

/// Everything that makes two sessions interchangeable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionConfig {
    pub model: PathBuf,
    pub provider: ProviderOptions,
    /// Intra-op threads; 0 lets ONNX Runtime pick.
    pub threads: usize,
    /// Distinguishes sessions one pipeline runs side by side (a session
    /// serialises its runs); replica n of two elements is still shared.
    pub replica: usize,
}

pub(super) fn open(config: &SessionConfig) -> Result<Session, ModelError> {
    let env = environment()?;
    let path = &config.model;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let providers = execution_providers(&config.provider, &name)?;
    let fail = |e: ort::Error| session_error(path, e);
    let mut builder = Session::builder(&env).map_err(fail)?;
    if config.threads > 0 {
        builder = builder
            .with_intra_threads(config.threads)
            .map_err(|e| fail(e.into()))?;
        builder = builder.with_inter_threads(1).map_err(|e| fail(e.into()))?;
        // Sessions run side by side on their own threads: spinning pool
        // threads would only steal the cores the other sessions need.
        builder = builder
            .with_config_entry("session.intra_op.allow_spinning", "0")
            .map_err(|e| fail(e.into()))?;
    }
    builder = builder
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| fail(e.into()))?;
    if !providers.is_empty() {
        builder = builder.with_execution_providers(providers).map_err(|e| {
            let e: ort::Error = e.into();
            ModelError::Provider {
                mode: config.provider.mode.name().into(),
                reason: e.to_string(),
            }
        })?;
    }
    builder.commit_from_file(path).map_err(fail)
}

fn session_error(path: &Path, e: ort::Error) -> ModelError {
    ModelError::Session {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// A poisoned lock only means another thread panicked mid-inference; the
/// session itself stays usable, so recover the guard instead of panicking.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
