//! Each way a GPU mode can be missing a piece gives an error naming that
//! piece and its fix. The machines the tests run on have no GPU, so the
//! CUDA driver and libraries are small stand-ins compiled here with `cc`:
//! a driver that reports an old CUDA, no device or one GPU, and empty
//! libraries under the CUDA libraries' names.

mod common;

use std::path::PathBuf;

use common::stand_ins::{cc, driver, libraries, scratch};
use gstspeakrs::models::gpu::{check_cuda, check_provider_library, CudaProbe, CUDA_LIBRARIES};

fn probe(driver: PathBuf, library_dirs: Vec<PathBuf>) -> CudaProbe {
    CudaProbe {
        driver,
        library_dirs,
        libraries: CUDA_LIBRARIES,
        // Only the stand-ins: a CUDA install on the test machine must not
        // change what is found.
        loader_path: false,
    }
}

fn cuda_error(probe: &CudaProbe, device_id: u32) -> String {
    match check_cuda(probe, device_id) {
        Ok(device) => panic!("expected an error, got {device:?}"),
        Err(e) => {
            eprintln!("{e}");
            e
        }
    }
}

#[test]
fn no_driver_is_named_with_the_driver_to_install() {
    let e = cuda_error(&probe(scratch().join("absent/libcuda.so.1"), vec![]), 0);
    assert!(e.starts_with("no NVIDIA driver"), "{e}");
    assert!(e.contains(">= 580") && e.contains("mode=cpu"), "{e}");
}

#[test]
fn a_driver_for_cuda_12_is_too_old() {
    let all = libraries("all-for-old-driver", &[]);
    let e = cuda_error(&probe(driver(12_080, 0, 1), vec![all]), 0);
    assert!(
        e.contains("too old") && e.contains("CUDA 12.8") && e.contains("CUDA 13.0"),
        "{e}"
    );
}

#[test]
fn a_driver_without_a_gpu_says_no_gpu_is_visible() {
    let all = libraries("all-for-no-gpu", &[]);
    let e = cuda_error(&probe(driver(13_000, 100, 0), vec![all]), 0);
    assert!(e.contains("no CUDA GPU is visible"), "{e}");
}

#[test]
fn a_device_id_past_the_gpus_names_the_ones_that_exist() {
    let all = libraries("all-for-device-id", &[]);
    let e = cuda_error(&probe(driver(13_000, 0, 1), vec![all.clone()]), 3);
    assert!(
        e.contains("device-id 3 does not exist: 1 CUDA GPU is visible"),
        "{e}"
    );
    let e = cuda_error(&probe(driver(13_000, 0, 2), vec![all]), 2);
    assert!(
        e.contains("2 CUDA GPUs are visible (device-id 0..1)"),
        "{e}"
    );
}

#[test]
fn a_missing_cublas_is_named_with_its_wheel() {
    let dir = libraries("no-cublas", &["libcublas.so.13"]);
    let e = cuda_error(&probe(driver(13_000, 0, 1), vec![dir]), 0);
    assert!(e.starts_with("libcublas.so.13 (cuBLAS) is missing"), "{e}");
    assert!(
        e.contains("nvidia-cublas") && e.contains("FEATURES=cuda scripts/setup.sh"),
        "{e}"
    );
}

#[test]
fn a_missing_cudnn_is_named_with_its_wheel() {
    let dir = libraries("no-cudnn", &["libcudnn.so.9"]);
    let e = cuda_error(&probe(driver(13_000, 0, 1), vec![dir]), 0);
    assert!(e.starts_with("libcudnn.so.9 (cuDNN 9) is missing"), "{e}");
    assert!(e.contains("nvidia-cudnn-cu13"), "{e}");
}

#[test]
fn a_complete_cuda_install_passes_and_names_the_gpu() {
    let dir = libraries("complete", &[]);
    let device =
        check_cuda(&probe(driver(13_000, 0, 1), vec![dir]), 0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(device.name, "Fake H200");
    assert_eq!((device.driver_cuda, device.count), (13_000, 1));
}

/// A provider library linking a library that is gone names that library,
/// as the MIGraphX provider does on a machine without ROCm.
#[test]
fn a_provider_missing_a_dependency_names_it() {
    let dir = scratch().join("provider");
    std::fs::create_dir_all(&dir).unwrap();
    let dependency = dir.join("libspeakrs_gone.so.3");
    cc(
        "int gone(void) { return 3; }\n",
        &dependency,
        &["-Wl,-soname,libspeakrs_gone.so.3"],
    );
    let provider = dir.join("libonnxruntime_providers_fake.so");
    cc(
        "int gone(void);\nint provider(void) { return gone(); }\n",
        &provider,
        &[&format!("-L{}", dir.display()), "-l:libspeakrs_gone.so.3"],
    );
    std::fs::remove_file(&dependency).unwrap();
    let ort = dir.join("libonnxruntime.so.1.31.1");
    let e = check_provider_library(
        &ort,
        "libonnxruntime_providers_fake.so",
        "install the runtime",
    )
    .expect_err("the dependency is gone");
    eprintln!("{e}");
    assert!(
        e.contains("libspeakrs_gone.so.3 is missing") && e.ends_with("install the runtime"),
        "{e}"
    );
    let e = check_provider_library(&ort, "libonnxruntime_providers_absent.so", "use mode=cpu")
        .expect_err("no such provider");
    assert!(e.contains("has no such provider"), "{e}");
}
