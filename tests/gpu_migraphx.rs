//! A `migraphx` build with the real onnxruntime-migraphx library on a
//! machine without ROCm: `mode=migraphx` is an element error naming the
//! missing ROCm library and the ROCm release to install, never a crash or
//! a silent CPU run. Needs `FEATURES=migraphx scripts/setup.sh` (which
//! installs that library; scripts/test.sh runs it first).
#![cfg(feature = "migraphx")]

mod common;
mod element_support;
mod fault_support;

use fault_support::*;
use gstspeakrs::models::paths;

#[test]
fn without_rocm_mode_migraphx_names_the_missing_library() {
    let library = paths::data_dir()
        .join("onnxruntime-migraphx")
        .join(format!("libonnxruntime.so.{}", paths::ORT_MIGRAPHX_VERSION));
    assert!(
        library.exists(),
        "{} is missing: run `FEATURES=migraphx scripts/setup.sh` first",
        library.display()
    );
    common::run_in_child(
        "child_without_rocm",
        &[("ORT_DYLIB_PATH", library.as_os_str())],
    );
}

#[test]
#[ignore = "run by without_rocm_mode_migraphx_names_the_missing_library in a child process"]
fn child_without_rocm() {
    // SAFETY: probing whether the loader finds ROCm's MIGraphX; nothing is called.
    let rocm = unsafe { libloading::Library::new("libmigraphx_c.so.3") };
    assert!(
        rocm.is_err(),
        "this machine has ROCm's MIGraphX: the case needs one without"
    );
    let _g = init();
    refused(
        "mode=migraphx",
        gst::ResourceError::Settings,
        &[
            "libmigraphx_c.so.3 is missing",
            paths::ROCM_VERSION,
            "mode=cpu",
        ],
    );
}
