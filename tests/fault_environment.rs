//! Fault matrix, environment (issue #6): broken model files, a bad PLDA,
//! an unwritable RTTM location, a mode the build lacks. Each is reported
//! on the bus by the element itself, naming the cause and the fix. (The
//! ONNX Runtime library cases need a fresh process: tests/fault_runtime.rs;
//! model_loading.rs covers the same files below the element.)

mod common;
mod element_support;
mod fault_support;

use std::path::PathBuf;

use fault_support::*;
use gstspeakrs::models::SETUP_COMMAND;

/// A private copy of the default model set, to damage.
fn model_copy(name: &str) -> PathBuf {
    let source = common::model_set().dir;
    let dir = element_support::tmp(&format!("models-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&source).unwrap().flatten() {
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    dir
}

#[test]
fn missing_model_file_is_an_element_error_naming_it_and_the_fix() {
    let _g = init();
    let dir = model_copy("missing");
    std::fs::remove_file(dir.join("campplus.onnx")).unwrap();
    refused(
        &format!("model-dir={}", dir.display()),
        gst::ResourceError::NotFound,
        &["campplus.onnx", SETUP_COMMAND],
    );
    refused(
        "model-dir=/nonexistent/speakrs-models",
        gst::ResourceError::NotFound,
        &["/nonexistent/speakrs-models", SETUP_COMMAND],
    );
}

#[test]
fn truncated_model_file_is_an_element_error_naming_it() {
    let _g = init();
    let dir = model_copy("truncated");
    let path = dir.join("segmentation-3.0.onnx");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    refused(
        &format!("model-dir={}", dir.display()),
        gst::ResourceError::OpenRead,
        &["segmentation-3.0.onnx", "sha256", SETUP_COMMAND],
    );
    // Truncated with no manifest to check against: ONNX Runtime refuses it.
    let lone = element_support::tmp("truncated-lone.onnx");
    std::fs::write(&lone, &bytes[..bytes.len() / 3]).unwrap();
    refused(
        &format!("segmentation-model={}", lone.display()),
        gst::ResourceError::OpenRead,
        &["truncated-lone.onnx"],
    );
}

#[test]
fn model_of_the_wrong_shape_is_an_element_error_naming_it() {
    let _g = init();
    let embedding = common::model_set().embedding;
    refused(
        &format!("segmentation-model={}", embedding.display()),
        gst::ResourceError::OpenRead,
        &["campplus.onnx"],
    );
}

#[test]
fn plda_with_nan_or_wrong_dimensions_is_an_element_error_naming_it() {
    let _g = init();
    let nan = element_support::tmp("nan-plda.npz");
    common::write_plda(&nan, |_, mut a| {
        a.iter_mut().take(1).for_each(|v| *v = f64::NAN);
        a
    });
    refused(
        &format!("plda={}", nan.display()),
        gst::ResourceError::OpenRead,
        &["nan-plda.npz"],
    );
    // Every array one element short in its first dimension.
    let short = element_support::tmp("short-plda.npz");
    common::write_plda(&short, |_, a| {
        let n = a.shape()[0];
        a.slice_axis(ndarray::Axis(0), ndarray::Slice::from(..n - 1))
            .to_owned()
    });
    refused(
        &format!("plda={}", short.display()),
        gst::ResourceError::OpenRead,
        &["short-plda.npz"],
    );
}

#[test]
fn unwritable_rttm_location_is_a_warning_naming_it_and_results_still_arrive() {
    let _g = init();
    for location in ["/nonexistent-dir/out.rttm", "/proc/speakrs.rttm"] {
        let mut p = Pipe::new(&format!("rttm-location={location}"));
        p.play().expect("PLAYING");
        p.feed(MONO16K, &speech(6.0), gst::ClockTime::ZERO, 500);
        let out = p.finish();
        out.assert_no_errors();
        let (warning, _, _) = out
            .warnings
            .first()
            .unwrap_or_else(|| panic!("{location}: no warning"));
        assert!(
            warning.matches(gst::ResourceError::OpenWrite),
            "{warning:?}"
        );
        assert!(
            warning.message().contains(location),
            "warning does not name {location}: {}",
            warning.message()
        );
        assert_eq!(
            out.finals.len(),
            1,
            "{location}: the final message must still be posted"
        );
        assert!(!out.final_turns().is_empty());
    }
}

#[test]
fn a_mode_this_build_lacks_is_an_element_error_naming_the_feature() {
    let _g = init();
    #[cfg(not(feature = "cuda"))]
    refused(
        "mode=cuda",
        gst::ResourceError::Settings,
        &["cuda", "--features cuda"],
    );
    #[cfg(not(feature = "migraphx"))]
    refused(
        "mode=migraphx",
        gst::ResourceError::Settings,
        &["migraphx", "--features migraphx"],
    );
    #[cfg(not(feature = "coreml"))]
    refused("mode=coreml", gst::ResourceError::Settings, &["coreml"]);
}
