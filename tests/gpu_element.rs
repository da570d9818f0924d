//! A `cuda` build's `mode=cuda` on a machine missing a piece of CUDA: an
//! element error (RESOURCE SETTINGS) naming the piece and its fix, never a
//! crash or a silent CPU run. Each case runs in a child process started
//! with the environment that stages it: `LD_LIBRARY_PATH` finds a stand-in
//! driver (tests/common/stand_ins.rs) before any real one, and
//! `XDG_DATA_HOME` holds the stand-in CUDA libraries where the set-up
//! would install NVIDIA's wheels. (tests/gpu_failures.rs checks each case
//! below the element.)
#![cfg(feature = "cuda")]

mod common;
mod element_support;
mod fault_support;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use common::stand_ins::{building, driver, libraries, scratch};
use fault_support::*;
use gstspeakrs::models::paths;

/// The child's environment: the stand-in `driver`'s folder first on the
/// loader path, `data` as the data folder, and the real models and CPU
/// ONNX Runtime named explicitly (they would otherwise be looked for
/// under `data`).
fn staged(driver: Option<&Path>, data: &Path) -> Vec<(&'static str, OsString)> {
    let cpu_ort = paths::data_dir()
        .join("onnxruntime")
        .join(format!("libonnxruntime.so.{}", paths::ORT_VERSION));
    vec![
        (
            "LD_LIBRARY_PATH",
            driver
                .and_then(Path::parent)
                .map_or_else(OsString::new, |d| d.as_os_str().to_owned()),
        ),
        ("XDG_DATA_HOME", data.as_os_str().to_owned()),
        (
            "GST_SPEAKRS_MODEL_DIR",
            common::model_set().dir.into_os_string(),
        ),
        ("ORT_DYLIB_PATH", cpu_ort.into_os_string()),
    ]
}

/// `XDG_DATA_HOME` whose `gst-speakrs/cuda` holds every CUDA library but `without`.
fn data_with_libraries(name: &str, without: &[&str]) -> PathBuf {
    let data = scratch().join(format!("data-{name}"));
    let cuda = data.join("gst-speakrs").join("cuda");
    let built = libraries(&format!("libs-{name}"), without);
    let _building = building();
    if !cuda.exists() {
        std::fs::create_dir_all(cuda.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(built, &cuda).unwrap();
    }
    data
}

fn in_child(name: &str, env: Vec<(&'static str, OsString)>) {
    let env: Vec<(&str, &std::ffi::OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    common::run_in_child(name, &env);
}

#[test]
fn without_a_driver_mode_cuda_names_the_driver() {
    in_child(
        "child_no_driver",
        staged(None, &data_with_libraries("all", &[])),
    );
}

#[test]
#[ignore = "run by without_a_driver_mode_cuda_names_the_driver in a child process"]
fn child_no_driver() {
    // SAFETY: probing whether the loader finds a driver; nothing is called.
    let real = unsafe { libloading::Library::new("libcuda.so.1") };
    assert!(
        real.is_err(),
        "this machine has an NVIDIA driver: the case needs one without"
    );
    let _g = init();
    refused(
        "mode=cuda",
        gst::ResourceError::Settings,
        &["no NVIDIA driver", "libcuda.so.1", "mode=cpu"],
    );
}

#[test]
fn a_driver_too_old_for_cuda_13_is_named_with_its_version() {
    in_child(
        "child_old_driver",
        staged(
            Some(&driver(12_080, 0, 1)),
            &data_with_libraries("all", &[]),
        ),
    );
}

#[test]
#[ignore = "run by a_driver_too_old_for_cuda_13_is_named_with_its_version in a child process"]
fn child_old_driver() {
    let _g = init();
    refused(
        "mode=cuda",
        gst::ResourceError::Settings,
        &["driver is too old", "CUDA 12.8"],
    );
}

#[test]
fn a_machine_without_a_gpu_says_so() {
    in_child(
        "child_no_gpu",
        staged(
            Some(&driver(13_000, 100, 0)),
            &data_with_libraries("all", &[]),
        ),
    );
}

#[test]
#[ignore = "run by a_machine_without_a_gpu_says_so in a child process"]
fn child_no_gpu() {
    let _g = init();
    refused(
        "mode=cuda",
        gst::ResourceError::Settings,
        &["no CUDA GPU is visible"],
    );
}

#[test]
fn a_device_id_that_does_not_exist_is_named() {
    in_child(
        "child_bad_device_id",
        staged(
            Some(&driver(13_000, 0, 1)),
            &data_with_libraries("all", &[]),
        ),
    );
}

#[test]
#[ignore = "run by a_device_id_that_does_not_exist_is_named in a child process"]
fn child_bad_device_id() {
    let _g = init();
    refused(
        "mode=cuda device-id=3",
        gst::ResourceError::Settings,
        &["device-id 3 does not exist", "1 CUDA GPU is visible"],
    );
}

#[test]
fn a_missing_cublas_is_named_with_its_wheel_and_the_setup() {
    in_child(
        "child_no_cublas",
        staged(
            Some(&driver(13_000, 0, 1)),
            &data_with_libraries("no-cublas", &["libcublas.so.13"]),
        ),
    );
}

#[test]
#[ignore = "run by a_missing_cublas_is_named_with_its_wheel_and_the_setup in a child process"]
fn child_no_cublas() {
    let _g = init();
    refused(
        "mode=cuda",
        gst::ResourceError::Settings,
        &[
            "libcublas.so.13",
            "nvidia-cublas",
            "FEATURES=cuda scripts/setup.sh",
        ],
    );
}

#[test]
fn a_missing_cudnn_is_named_with_its_wheel() {
    in_child(
        "child_no_cudnn",
        staged(
            Some(&driver(13_000, 0, 1)),
            &data_with_libraries("no-cudnn", &["libcudnn.so.9"]),
        ),
    );
}

#[test]
#[ignore = "run by a_missing_cudnn_is_named_with_its_wheel in a child process"]
fn child_no_cudnn() {
    let _g = init();
    refused(
        "mode=cuda",
        gst::ResourceError::Settings,
        &["libcudnn.so.9", "nvidia-cudnn-cu13"],
    );
}

/// Driver, GPU and libraries in place, but the CPU build of ONNX Runtime
/// loaded: the mode names the GPU build and the set-up that installs it.
#[test]
fn a_cpu_onnx_runtime_names_the_gpu_build_to_install() {
    in_child(
        "child_cpu_onnxruntime",
        staged(
            Some(&driver(13_000, 0, 1)),
            &data_with_libraries("all", &[]),
        ),
    );
}

#[test]
#[ignore = "run by a_cpu_onnx_runtime_names_the_gpu_build_to_install in a child process"]
fn child_cpu_onnxruntime() {
    let _g = init();
    refused(
        "mode=cuda",
        gst::ResourceError::Settings,
        &[
            "no CUDA execution provider",
            "FEATURES=cuda scripts/setup.sh",
            "onnxruntime-gpu",
        ],
    );
}
