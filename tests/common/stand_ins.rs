//! Stand-in shared libraries compiled with `cc`: the CUDA driver and
//! libraries (GPU modes' failures on machines without a GPU) and an
//! ONNX Runtime too old to use.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

use gstspeakrs::models::gpu::CUDA_LIBRARIES;

const FAKE_DRIVER: &str = r#"
#include <string.h>
int cuDriverGetVersion(int *v) { *v = VERSION; return 0; }
int cuInit(unsigned int flags) { (void)flags; return INIT_RESULT; }
int cuDeviceGetCount(int *n) { *n = COUNT; return 0; }
int cuDeviceGet(int *d, int ordinal) { *d = ordinal; return 0; }
int cuDeviceGetName(char *name, int len, int d) {
    (void)d; strncpy(name, "Fake H200", len); return 0;
}
"#;

/// Tests build stand-ins side by side: one builds a given file at a time.
pub fn building() -> MutexGuard<'static, ()> {
    static BUILDING: Mutex<()> = Mutex::new(());
    BUILDING.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("speakrs-fake-cuda-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// Compiles `source` into the shared library `out`.
pub fn cc(source: &str, out: &Path, args: &[&str]) {
    // Sources apart from the libraries: a folder is searched for libraries.
    let sources = scratch().join("sources");
    std::fs::create_dir_all(&sources).unwrap();
    let src = sources.join(format!("{}.c", out.display().to_string().replace('/', "_")));
    std::fs::write(&src, source).unwrap();
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(out)
        .arg(&src)
        .args(args)
        .status()
        .expect("a C compiler (cc) for the stand-in CUDA libraries");
    assert!(status.success(), "cc failed for {}", out.display());
}

/// A stand-in driver reporting `version`, `cuInit`'s `init` result and
/// `count` GPUs.
pub fn driver(version: i32, init: i32, count: i32) -> PathBuf {
    let dir = scratch().join(format!("driver-{version}-{init}-{count}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("libcuda.so.1");
    let _building = building();
    if !path.exists() {
        cc(
            FAKE_DRIVER,
            &path,
            &[
                &format!("-DVERSION={version}"),
                &format!("-DINIT_RESULT={init}"),
                &format!("-DCOUNT={count}"),
            ],
        );
    }
    path
}

/// A folder laid out like NVIDIA's CUDA 13 wheels installed with `pip
/// --target` (`nvidia/cu13/lib`, cuDNN in `nvidia/cudnn/lib`),
/// holding empty libraries under every CUDA library's name but `without`.
pub fn libraries(name: &str, without: &[&str]) -> PathBuf {
    let root = scratch().join(name);
    let _building = building();
    if root.exists() {
        return root;
    }
    for library in CUDA_LIBRARIES {
        if without.contains(&library.soname) {
            continue;
        }
        let package = if library.soname.starts_with("libcudnn") {
            "cudnn"
        } else {
            "cu13"
        };
        let dir = root.join("nvidia").join(package).join("lib");
        std::fs::create_dir_all(&dir).unwrap();
        cc("int speakrs_stand_in;\n", &dir.join(library.soname), &[]);
        if library.soname.starts_with("libcudnn.") {
            cc(
                "int speakrs_stand_in;\n",
                &dir.join("libcudnn_ops.so.9"),
                &[],
            );
        }
    }
    root
}

/// A stand-in libonnxruntime that reports version 1.16.3 (ort needs 1.23).
pub fn too_old_onnxruntime() -> PathBuf {
    let lib = scratch().join("old-ort").join("libonnxruntime.so.1.16.3");
    std::fs::create_dir_all(lib.parent().unwrap()).unwrap();
    cc(
        r#"#include <stddef.h>
typedef struct { const void *(*GetApi)(unsigned); const char *(*GetVersionString)(void); } OrtApiBase;
static const void *get_api(unsigned v) { (void)v; return NULL; }
static const char *version(void) { return "1.16.3"; }
static const OrtApiBase base = { get_api, version };
const OrtApiBase *OrtGetApiBase(void) { return &base; }
"#,
        &lib,
        &[],
    );
    lib
}
