//! A missing or wrong ONNX Runtime library is a clear error, never a panic
//! or a hang. Its own test binary: the library loads once per process.

use gstspeakrs::models::runtime::environment;

#[test]
fn missing_or_wrong_onnx_runtime_library_is_a_clear_error() {
    std::env::set_var("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1.23.2");
    let err = environment().expect_err("no library there").to_string();
    assert!(
        err.contains("/nonexistent/libonnxruntime.so.1.23.2") && err.contains("ORT_DYLIB_PATH"),
        "{err}"
    );

    // A shared library that is not ONNX Runtime.
    let not_ort = [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("zlib is on every Debian system");
    std::env::set_var("ORT_DYLIB_PATH", not_ort);
    let err = environment()
        .expect_err("zlib is no ONNX Runtime")
        .to_string();
    assert!(
        err.contains("OrtGetApiBase") && err.contains("ORT_DYLIB_PATH"),
        "{err}"
    );

    // Fixing the path and retrying works: failures are not cached.
    std::env::remove_var("ORT_DYLIB_PATH");
    environment().unwrap_or_else(|e| panic!("default library after set-up: {e}"));
}
