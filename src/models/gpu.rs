//! What a GPU mode needs before its execution provider is registered, each
//! checked so that a missing piece is an error naming it and its fix.
//! ONNX Runtime's own reports are a `dlopen` message deep inside a session
//! error at best, and a process abort at worst (a provider whose CUDA
//! libraries are missing can fail inside its first kernel launch).
//!
//! CUDA: the driver (`libcuda.so.1`, new enough for CUDA 13), a GPU at
//! `device-id`, then the CUDA 13 user-space libraries that
//! onnxruntime-gpu's provider links or opens. Those are looked for first
//! where `FEATURES=cuda scripts/setup.sh` installs NVIDIA's wheels
//! (`$XDG_DATA_HOME/gst-speakrs/cuda/nvidia/*/lib`, loaded here with
//! `RTLD_GLOBAL` so the provider finds them by name), then on the system
//! loader path (`LD_LIBRARY_PATH`, ldconfig).
//!
//! Any provider: its library, opened as ONNX Runtime will open it, so that
//! a missing dependency (ROCm's `libmigraphx_c.so`, say) is named.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{c_char, c_int, c_uint, OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};

/// CUDA version the pinned onnxruntime-gpu (1.31.1) was built with; the
/// driver must support at least this (`cuDriverGetVersion` encoding).
pub const MIN_DRIVER_CUDA: i32 = 13_000;

/// A user-space library a GPU provider needs, and where users get it.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeLibrary {
    pub soname: &'static str,
    pub what: &'static str,
    /// The NVIDIA PyPI wheel that ships it.
    pub package: &'static str,
}

/// In dependency order: each is loaded after what it links.
pub const CUDA_LIBRARIES: &[RuntimeLibrary] = &[
    RuntimeLibrary {
        soname: "libcudart.so.13",
        what: "CUDA runtime",
        package: "nvidia-cuda-runtime",
    },
    RuntimeLibrary {
        soname: "libcublasLt.so.13",
        what: "cuBLASLt",
        package: "nvidia-cublas",
    },
    RuntimeLibrary {
        soname: "libcublas.so.13",
        what: "cuBLAS",
        package: "nvidia-cublas",
    },
    RuntimeLibrary {
        soname: "libcurand.so.10",
        what: "cuRAND",
        package: "nvidia-curand",
    },
    RuntimeLibrary {
        soname: "libnvJitLink.so.13",
        what: "nvJitLink",
        package: "nvidia-nvjitlink",
    },
    RuntimeLibrary {
        soname: "libcufft.so.12",
        what: "cuFFT",
        package: "nvidia-cufft",
    },
    RuntimeLibrary {
        soname: "libcudnn.so.9",
        what: "cuDNN 9",
        package: "nvidia-cudnn-cu13",
    },
];

/// The GPU a CUDA mode will run on.
#[derive(Debug, Clone, PartialEq)]
pub struct CudaDevice {
    pub name: String,
    /// `cuDriverGetVersion`'s value, e.g. 13000 for CUDA 13.0.
    pub driver_cuda: i32,
    pub count: u32,
}

/// Where the CUDA pieces are looked for; tests point it at fakes.
#[derive(Debug, Clone)]
pub struct CudaProbe {
    /// The driver library: a name for the loader's search, or a path.
    pub driver: PathBuf,
    /// Folders searched (with their `nvidia/*/lib` subfolders) before the
    /// loader path for the runtime libraries.
    pub library_dirs: Vec<PathBuf>,
    pub libraries: &'static [RuntimeLibrary],
    /// Whether the loader's own search (LD_LIBRARY_PATH, ldconfig) is tried
    /// after `library_dirs`.
    pub loader_path: bool,
}

impl Default for CudaProbe {
    fn default() -> Self {
        Self {
            driver: PathBuf::from("libcuda.so.1"),
            library_dirs: vec![super::paths::cuda_library_dir()],
            libraries: CUDA_LIBRARIES,
            loader_path: true,
        }
    }
}

const SETUP_HINT: &str = "FEATURES=cuda scripts/setup.sh";

/// Libraries loaded for providers stay loaded for the process (ONNX
/// Runtime keeps its providers, and so what they link, until exit): one
/// handle per name or path, however often sessions are opened.
static KEPT: Mutex<BTreeMap<OsString, Library>> = Mutex::new(BTreeMap::new());

/// Loads `path` (a name for the loader's search, or a path) with
/// `RTLD_GLOBAL`, so that libraries opened later by name find it, and
/// keeps it loaded.
fn load_global(path: &OsStr) -> Result<(), String> {
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    if !kept.contains_key(path) {
        kept.insert(path.to_owned(), open_global(path)?);
    }
    Ok(())
}

fn open_global(path: &OsStr) -> Result<Library, String> {
    // SAFETY: loading a shared library runs its initialisers; these are
    // the vendor libraries ONNX Runtime would load itself a moment later.
    unsafe { Library::open(Some(path), RTLD_NOW | RTLD_GLOBAL) }.map_err(|e| describe(&e))
}

/// libloading's message with `dlerror`'s text, which names what is missing.
fn describe(e: &libloading::Error) -> String {
    match std::error::Error::source(e) {
        Some(source) => source.to_string(),
        None => e.to_string(),
    }
}

type CuInit = unsafe extern "C" fn(c_uint) -> c_int;
type CuDriverGetVersion = unsafe extern "C" fn(*mut c_int) -> c_int;
type CuDeviceGetCount = unsafe extern "C" fn(*mut c_int) -> c_int;
type CuDeviceGet = unsafe extern "C" fn(*mut c_int, c_int) -> c_int;
type CuDeviceGetName = unsafe extern "C" fn(*mut c_char, c_int, c_int) -> c_int;

const CUDA_SUCCESS: c_int = 0;
const CUDA_ERROR_INSUFFICIENT_DRIVER: c_int = 35;
const CUDA_ERROR_NO_DEVICE: c_int = 100;

fn cuda_version(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

/// `check_cuda` with the default probe, once per GPU: every session the
/// mode opens (one per model and inference thread) asks again. Failures are
/// not remembered, so a fixed machine works on the next start.
pub fn check_default_cuda(device_id: u32) -> Result<(), String> {
    static READY: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    if !ready.contains(&device_id) {
        check_cuda(&CudaProbe::default(), device_id)?;
        ready.insert(device_id);
    }
    Ok(())
}

/// Checks the driver, the GPU `device_id` and the CUDA libraries, loading
/// the libraries so that the CUDA provider finds them. The error says
/// what is missing and how to get it.
pub fn check_cuda(probe: &CudaProbe, device_id: u32) -> Result<CudaDevice, String> {
    let device = check_driver(probe, device_id)?;
    for library in probe.libraries {
        load_runtime_library(probe, library)?;
    }
    Ok(device)
}

fn check_driver(probe: &CudaProbe, device_id: u32) -> Result<CudaDevice, String> {
    let driver = open_global(probe.driver.as_os_str()).map_err(|e| {
        format!(
            "no NVIDIA driver: {} cannot be loaded ({e}). Install the NVIDIA driver (>= 580, for CUDA {}), or use mode=cpu",
            probe.driver.display(),
            cuda_version(MIN_DRIVER_CUDA)
        )
    })?;
    // SAFETY: the CUDA driver API's C signatures, as declared in cuda.h.
    let device = unsafe {
        let get_version: CuDriverGetVersion = symbol(&driver, probe, "cuDriverGetVersion")?;
        let init: CuInit = symbol(&driver, probe, "cuInit")?;
        let get_count: CuDeviceGetCount = symbol(&driver, probe, "cuDeviceGetCount")?;
        let get_device: CuDeviceGet = symbol(&driver, probe, "cuDeviceGet")?;
        let get_name: CuDeviceGetName = symbol(&driver, probe, "cuDeviceGetName")?;

        let mut version: c_int = 0;
        if get_version(&mut version) != CUDA_SUCCESS || version < MIN_DRIVER_CUDA {
            return Err(format!(
                "the NVIDIA driver is too old: it supports CUDA {}, and onnxruntime-gpu's CUDA provider needs CUDA {} (driver >= 580). Update the driver, or use mode=cpu",
                cuda_version(version),
                cuda_version(MIN_DRIVER_CUDA)
            ));
        }
        match init(0) {
            CUDA_SUCCESS => {}
            CUDA_ERROR_NO_DEVICE => {
                return Err("no CUDA GPU is visible (the driver is installed but reports no device; check CUDA_VISIBLE_DEVICES and `nvidia-smi`), or use mode=cpu".into())
            }
            CUDA_ERROR_INSUFFICIENT_DRIVER => {
                return Err("the NVIDIA kernel module does not match the driver library (cuInit: insufficient driver); reboot after a driver update, or use mode=cpu".into())
            }
            code => {
                return Err(format!(
                    "the CUDA driver failed to start (cuInit error {code}); check `nvidia-smi`, or use mode=cpu"
                ))
            }
        }
        let mut count: c_int = 0;
        if get_count(&mut count) != CUDA_SUCCESS || count <= 0 {
            return Err("no CUDA GPU is visible (cuDeviceGetCount found none); check CUDA_VISIBLE_DEVICES and `nvidia-smi`, or use mode=cpu".into());
        }
        let count = count as u32;
        if device_id >= count {
            return Err(format!(
                "device-id {device_id} does not exist: {count} CUDA GPU{} visible (device-id 0{})",
                if count == 1 { " is" } else { "s are" },
                if count > 1 {
                    format!("..{}", count - 1)
                } else {
                    String::new()
                }
            ));
        }
        let mut handle: c_int = 0;
        let mut name = [0 as c_char; 256];
        let name = if get_device(&mut handle, device_id as c_int) == CUDA_SUCCESS
            && get_name(name.as_mut_ptr(), name.len() as c_int, handle) == CUDA_SUCCESS
        {
            std::ffi::CStr::from_ptr(name.as_ptr())
                .to_string_lossy()
                .into_owned()
        } else {
            "unnamed GPU".into()
        };
        CudaDevice {
            name,
            driver_cuda: version,
            count,
        }
    };
    KEPT.lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(probe.driver.as_os_str().to_owned())
        .or_insert(driver);
    Ok(device)
}

/// The driver's function `name`, of type `T`.
///
/// # Safety
/// `T` must be the function's C signature.
unsafe fn symbol<T: Copy>(driver: &Library, probe: &CudaProbe, name: &str) -> Result<T, String> {
    driver.get::<T>(name.as_bytes()).map(|f| *f).map_err(|e| {
        format!(
            "{} is not a CUDA driver (no {name}: {})",
            probe.driver.display(),
            describe(&e)
        )
    })
}

/// `dir` and its `nvidia/*/lib` subfolders (the layout of NVIDIA's wheels
/// installed with `pip install --target dir`).
fn candidate_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![dir.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(dir.join("nvidia")) {
        let mut packages: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("lib"))
            .filter(|p| p.is_dir())
            .collect();
        packages.sort();
        dirs.extend(packages);
    }
    dirs
}

fn load_runtime_library(probe: &CudaProbe, library: &RuntimeLibrary) -> Result<(), String> {
    let dirs: Vec<PathBuf> = probe
        .library_dirs
        .iter()
        .flat_map(|d| candidate_dirs(d))
        .collect();
    let local = dirs
        .iter()
        .map(|d| d.join(library.soname))
        .find(|p| p.exists());
    let loaded = match &local {
        Some(path) => load_global(path.as_os_str()),
        None if probe.loader_path => load_global(OsStr::new(library.soname)),
        None => Err("not searched".into()),
    };
    match loaded {
        Ok(()) => {
            if library.soname.starts_with("libcudnn.") {
                // cuDNN opens its sub-libraries (ops, cnn, engines) by name
                // at run time: load those beside it too.
                if let Some(dir) = local.as_deref().and_then(Path::parent) {
                    load_siblings(dir, "libcudnn_")?;
                }
            }
            Ok(())
        }
        Err(e) => {
            let searched: Vec<String> = probe
                .library_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            Err(format!(
                "{} ({}) is missing: not in {} nor on the loader path ({}). Install it with `{SETUP_HINT}` (which puts NVIDIA's `{}` wheel there), or add its folder to LD_LIBRARY_PATH",
                library.soname,
                library.what,
                searched.join(", "),
                match &local {
                    Some(path) => format!("{} failed to load: {e}", path.display()),
                    None => e,
                },
                library.package
            ))
        }
    }
}

fn load_siblings(dir: &Path, prefix: &str) -> Result<(), String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut names: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(OsStr::to_str)
                .is_some_and(|n| n.starts_with(prefix) && is_shared_library(n))
        })
        .collect();
    names.sort();
    // The sub-libraries link one another; load them in dependency order
    // by retrying what failed until no more loads succeed.
    let mut failed: Vec<(PathBuf, String)> = Vec::new();
    loop {
        let before = names.len();
        failed.clear();
        names.retain(|path| match load_global(path.as_os_str()) {
            Ok(()) => false,
            Err(e) => {
                failed.push((path.clone(), e));
                true
            }
        });
        if names.is_empty() || names.len() == before {
            break;
        }
    }
    match failed.first() {
        None => Ok(()),
        Some((path, e)) => Err(format!("{} failed to load: {e}", path.display())),
    }
}

/// `libx.so` or `libx.so.9[.1…]`.
fn is_shared_library(name: &str) -> bool {
    match name.split_once(".so") {
        Some((_, "")) => true,
        Some((_, version)) => version.strip_prefix('.').is_some_and(|v| {
            v.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        }),
        None => false,
    }
}

/// Opens the provider library `name` beside the loaded ONNX Runtime, as
/// ONNX Runtime will, so that a missing dependency is named with its fix.
pub fn check_provider_library(ort_library: &Path, name: &str, fix: &str) -> Result<(), String> {
    let path = ort_library
        .parent()
        .map_or_else(|| PathBuf::from(name), |dir| dir.join(name));
    if !path.exists() {
        return Err(format!(
            "{} is missing beside {}: this ONNX Runtime build has no such provider; {fix}",
            path.display(),
            ort_library.display()
        ));
    }
    match load_global(path.as_os_str()) {
        Ok(()) => Ok(()),
        Err(e) => Err(format!(
            "{} cannot be loaded: {}; {fix}",
            path.display(),
            missing_dependency(&e).map_or(e.clone(), |dep| format!("{dep} is missing ({e})"))
        )),
    }
}

/// The library named in a `dlopen` "cannot open shared object file" error.
fn missing_dependency(error: &str) -> Option<String> {
    let end = error.find(": cannot open shared object file")?;
    let start = error[..end].rfind([' ', ':']).map_or(0, |i| i + 1);
    Some(error[start..end].trim().to_string()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_dependency_is_read_from_dlopen_errors() {
        let e = "/x/libonnxruntime_providers_migraphx.so: libmigraphx_c.so.3: cannot open shared object file: No such file or directory";
        assert_eq!(missing_dependency(e).as_deref(), Some("libmigraphx_c.so.3"));
        assert_eq!(missing_dependency("something else"), None);
    }

    #[test]
    fn only_shared_libraries_are_siblings() {
        for name in [
            "libcudnn_ops.so",
            "libcudnn_ops.so.9",
            "libcudnn_ops.so.9.10.2",
        ] {
            assert!(is_shared_library(name), "{name}");
        }
        for name in [
            "libcudnn_ops.so.c",
            "libcudnn_ops.so.9.txt",
            "libcudnn_ops.a",
            "libx.so.",
        ] {
            assert!(!is_shared_library(name), "{name}");
        }
    }

    #[test]
    fn versions_read_as_cuda_does() {
        assert_eq!(cuda_version(13_000), "13.0");
        assert_eq!(cuda_version(12_080), "12.8");
    }
}
