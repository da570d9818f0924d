//! Execution providers behind the `mode` property. A mode the build or the
//! loaded ONNX Runtime lacks is an error, never a silent CPU fallback.

use std::path::PathBuf;

#[cfg(any(
    feature = "cuda",
    feature = "migraphx",
    all(feature = "coreml", target_os = "macos")
))]
use ort::ep::ExecutionProvider;
use ort::ep::ExecutionProviderDispatch;

use super::ModelError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    #[default]
    Cpu,
    Cuda,
    CoreMl,
    MiGraphX,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Cpu => "cpu",
            Mode::Cuda => "cuda",
            Mode::CoreMl => "coreml",
            Mode::MiGraphX => "migraphx",
        }
    }
}

/// Provider options that matter for GPUs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ProviderOptions {
    pub mode: Mode,
    pub device_id: u32,
    /// Where MIGraphX keeps compiled graphs between runs (its first compile
    /// takes minutes); `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

#[allow(dead_code)] // Only referenced by the GPU features' code paths.
fn missing_feature(mode: Mode, feature: &str) -> ModelError {
    ModelError::Provider {
        mode: mode.name().into(),
        reason: format!(
            "this build of gst-speakrs lacks the cargo feature `{feature}`; rebuild with `cargo build --release --features {feature}` (or `FEATURES={feature} scripts/setup.sh`)"
        ),
    }
}

#[allow(dead_code)]
fn missing_in_library(mode: Mode, provider: &str, package: &str) -> ModelError {
    ModelError::Provider {
        mode: mode.name().into(),
        reason: format!(
            "the loaded ONNX Runtime library ({}) has no {provider}; {}point ORT_DYLIB_PATH at the `{package}` build's libonnxruntime",
            super::paths::ort_library().display(),
            // The set-up installs the Linux GPU builds, not macOS's.
            match mode {
                Mode::Cuda | Mode::MiGraphX => format!(
                    "run `FEATURES={} scripts/setup.sh` (installs the `{package}` wheel's libraries where the plugin finds them), or ",
                    mode.name()
                ),
                _ => String::new(),
            }
        ),
    }
}

#[allow(dead_code)]
fn unavailable(mode: Mode, reason: String) -> ModelError {
    ModelError::Provider {
        mode: mode.name().into(),
        reason,
    }
}

/// The execution providers for `opts`, checked against the loaded library.
/// Call after the environment exists (the check queries ONNX Runtime).
pub fn execution_providers(
    opts: &ProviderOptions,
    model_name: &str,
) -> Result<Vec<ExecutionProviderDispatch>, ModelError> {
    let _ = model_name;
    match opts.mode {
        Mode::Cpu => Ok(Vec::new()),
        Mode::Cuda => cuda(opts),
        Mode::MiGraphX => migraphx(opts, model_name),
        Mode::CoreMl => coreml(opts),
    }
}

#[cfg(feature = "cuda")]
fn cuda(opts: &ProviderOptions) -> Result<Vec<ExecutionProviderDispatch>, ModelError> {
    // The machine first (driver, GPU, CUDA libraries), then the ONNX Runtime
    // build: the provider itself reports a missing piece late and vaguely,
    // or aborts.
    super::gpu::check_default_cuda(opts.device_id)
        .map_err(|reason| unavailable(opts.mode, reason))?;
    if !<ort::ep::CUDA as ExecutionProvider>::is_available().unwrap_or(false) {
        return Err(missing_in_library(
            opts.mode,
            "CUDA execution provider",
            "onnxruntime-gpu",
        ));
    }
    super::gpu::check_provider_library(
        &super::paths::ort_library(),
        "libonnxruntime_providers_cuda.so",
        "run `FEATURES=cuda scripts/setup.sh`, or use mode=cpu",
    )
    .map_err(|reason| unavailable(opts.mode, reason))?;
    let ep = ort::ep::CUDA::default().with_device_id(opts.device_id as i32);
    Ok(vec![ep.build().error_on_failure()])
}

#[cfg(not(feature = "cuda"))]
fn cuda(opts: &ProviderOptions) -> Result<Vec<ExecutionProviderDispatch>, ModelError> {
    Err(missing_feature(opts.mode, "cuda"))
}

#[cfg(feature = "migraphx")]
fn migraphx(
    opts: &ProviderOptions,
    model_name: &str,
) -> Result<Vec<ExecutionProviderDispatch>, ModelError> {
    use ort::ep::ArenaExtendStrategy;
    // SameAsRequested keeps the arena from doubling past what the batches need
    // (what upstream speakrs found on ROCm GPUs).
    let mut ep = ort::ep::MIGraphX::default()
        .with_device_id(opts.device_id as i32)
        .with_arena_extend_strategy(ArenaExtendStrategy::SameAsRequested);
    if let Some(dir) = &opts.cache_dir {
        let compiled = dir.join(format!("{model_name}.mxr"));
        if compiled.exists() {
            ep = ep.with_load_model(compiled.to_string_lossy());
        } else if std::fs::create_dir_all(dir).is_ok() {
            ep = ep.with_save_model(compiled.to_string_lossy());
        }
    }
    if !<ort::ep::MIGraphX as ExecutionProvider>::is_available().unwrap_or(false) {
        return Err(missing_in_library(
            opts.mode,
            "MIGraphX execution provider",
            "onnxruntime-migraphx",
        ));
    }
    // The provider links ROCm's MIGraphX and HIP libraries: name the one
    // that is missing rather than ONNX Runtime's generic load failure.
    super::gpu::check_provider_library(
        &super::paths::ort_library(),
        "libonnxruntime_providers_migraphx.so",
        &format!(
            "install ROCm {} with MIGraphX (https://rocm.docs.amd.com) so that its libraries are on the loader path, or use mode=cpu",
            super::paths::ROCM_VERSION
        ),
    )
    .map_err(|reason| unavailable(opts.mode, reason))?;
    Ok(vec![ep.build().error_on_failure()])
}

#[cfg(not(feature = "migraphx"))]
fn migraphx(
    opts: &ProviderOptions,
    _model_name: &str,
) -> Result<Vec<ExecutionProviderDispatch>, ModelError> {
    Err(missing_feature(opts.mode, "migraphx"))
}

#[cfg(all(feature = "coreml", target_os = "macos"))]
fn coreml(opts: &ProviderOptions) -> Result<Vec<ExecutionProviderDispatch>, ModelError> {
    let ep = ort::ep::CoreML::default();
    if !<ort::ep::CoreML as ExecutionProvider>::is_available().unwrap_or(false) {
        return Err(missing_in_library(
            opts.mode,
            "CoreML execution provider",
            "onnxruntime (macOS)",
        ));
    }
    Ok(vec![ep.build().error_on_failure()])
}

#[cfg(not(all(feature = "coreml", target_os = "macos")))]
fn coreml(opts: &ProviderOptions) -> Result<Vec<ExecutionProviderDispatch>, ModelError> {
    if cfg!(target_os = "macos") {
        Err(missing_feature(opts.mode, "coreml"))
    } else {
        Err(ModelError::Provider {
            mode: opts.mode.name().into(),
            reason: "CoreML exists only on macOS; use mode=cpu, cuda or migraphx here".into(),
        })
    }
}
