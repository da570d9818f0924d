//! Fault matrix, ONNX Runtime library (issue #6), at element level: a
//! missing library and one too old are element errors naming the library
//! and ORT_DYLIB_PATH; fixing the variable and restarting works. Its own
//! test binary: the library loads once per process, so nothing may load
//! it before this test sets ORT_DYLIB_PATH. (tests/ort_missing.rs checks
//! the same below the element, plus a library that is not ONNX Runtime.)

mod common;
mod element_support;
mod fault_support;

use fault_support::*;

/// A stand-in libonnxruntime that reports version 1.16.3 (ort needs 1.23).
fn too_old_library() -> std::path::PathBuf {
    let dir = element_support::tmp("old-ort");
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("fake_ort.c");
    std::fs::write(
        &source,
        r#"#include <stddef.h>
typedef struct { const void *(*GetApi)(unsigned); const char *(*GetVersionString)(void); } OrtApiBase;
static const void *get_api(unsigned v) { (void)v; return NULL; }
static const char *version(void) { return "1.16.3"; }
static const OrtApiBase base = { get_api, version };
const OrtApiBase *OrtGetApiBase(void) { return &base; }
"#,
    )
    .unwrap();
    let lib = dir.join("libonnxruntime.so.1.16.3");
    let status = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&source)
        .status()
        .expect("a C compiler (cc) builds the stand-in library");
    assert!(status.success());
    lib
}

#[test]
fn missing_or_too_old_onnx_runtime_is_an_element_error_then_recovers() {
    let _g = init();
    std::env::set_var("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1.23.2");
    refused(
        "",
        gst::ResourceError::NotFound,
        &["/nonexistent/libonnxruntime.so.1.23.2", "ORT_DYLIB_PATH"],
    );

    let old = too_old_library();
    std::env::set_var("ORT_DYLIB_PATH", &old);
    refused(
        "",
        gst::ResourceError::NotFound,
        &["libonnxruntime.so.1.16.3", "1.16.3", "ORT_DYLIB_PATH"],
    );

    // Fixed: the next start loads the right library (failures are not cached).
    std::env::remove_var("ORT_DYLIB_PATH");
    let mut p = Pipe::new("");
    p.play().expect("PLAYING with the installed library");
    p.feed(MONO16K, &speech(6.0), gst::ClockTime::ZERO, 500);
    assert!(!p.finish().turns_within(6.0).is_empty());
}
