//! Loading errors name the file, what is wrong and the command that fixes it.

mod common;

use std::path::{Path, PathBuf};

use gstspeakrs::engine::pipeline::{Pipeline, PipelineConfig};
use gstspeakrs::models::{ModelError, ModelSet, ModelSetRequest, SETUP_COMMAND};

/// A private copy of the default model set, to damage.
fn copy_of_default_set(name: &str) -> PathBuf {
    let source = common::model_set().dir;
    let dir = std::env::temp_dir().join(format!("speakrs-models-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    dir
}

fn resolve(dir: &Path) -> Result<ModelSet, ModelError> {
    ModelSet::resolve(&ModelSetRequest {
        dir: Some(dir.into()),
        ..Default::default()
    })
}

#[test]
fn default_set_has_a_manifest_and_verifies() {
    let set = common::model_set();
    assert!(
        set.dir.join("manifest.json").exists(),
        "scripts/setup.sh writes manifest.json"
    );
    assert!(set.plda.is_some(), "the default set ships a PLDA for VBx");
}

#[test]
fn missing_model_file_is_named_with_the_fix() {
    let dir = copy_of_default_set("missing");
    std::fs::remove_file(dir.join("campplus.onnx")).unwrap();
    let err = resolve(&dir).unwrap_err();
    assert!(matches!(err, ModelError::Missing { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("campplus.onnx") && msg.contains(SETUP_COMMAND),
        "{msg}"
    );
}

#[test]
fn missing_directory_is_reported() {
    let err = resolve(Path::new("/nonexistent/speakrs-models")).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/speakrs-models"),
        "{err}"
    );
}

#[test]
fn corrupted_model_fails_its_checksum() {
    let dir = copy_of_default_set("corrupt");
    let path = dir.join("segmentation-3.0.onnx");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let err = resolve(&dir).unwrap_err();
    assert!(matches!(err, ModelError::Checksum { .. }), "{err}");
    assert!(
        err.to_string().contains("segmentation-3.0.onnx") && err.to_string().contains("sha256"),
        "{err}"
    );
}

#[test]
fn truncated_model_fails_its_checksum() {
    let dir = copy_of_default_set("truncated");
    let path = dir.join("campplus.onnx");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    assert!(matches!(
        resolve(&dir).unwrap_err(),
        ModelError::Checksum { .. }
    ));
}

#[test]
fn model_of_the_wrong_shape_is_refused() {
    let set = common::model_set();
    let config = PipelineConfig {
        models: ModelSetRequest {
            segmentation: Some(set.embedding.clone()),
            ..Default::default()
        },
        threads: 1,
        ..Default::default()
    };
    let err = Pipeline::load(&config)
        .err()
        .expect("CAM++ is no segmentation model");
    assert!(matches!(err, ModelError::Shape { .. }), "{err}");
    assert!(err.to_string().contains("campplus.onnx"), "{err}");
}

#[test]
fn plda_with_wrong_dimensions_or_nan_is_refused() {
    let dir = copy_of_default_set("plda");
    // The reference PLDA of pyannote's VBx test has 192-d input like CAM++: fine.
    // A PLDA for 256-d WeSpeaker embeddings is not.
    let mut wrong =
        ndarray_npy::NpzWriter::new(std::fs::File::create(dir.join("bad.npz")).unwrap());
    wrong
        .add_array("mean1", &ndarray::Array1::<f64>::zeros(256))
        .unwrap();
    wrong
        .add_array("mean2", &ndarray::Array1::<f64>::zeros(128))
        .unwrap();
    wrong
        .add_array(
            "lda",
            &ndarray::Array2::<f64>::eye(256)
                .slice(ndarray::s![.., ..128])
                .to_owned(),
        )
        .unwrap();
    wrong
        .add_array("mu", &ndarray::Array1::<f64>::zeros(128))
        .unwrap();
    wrong
        .add_array("tr", &ndarray::Array2::<f64>::eye(128))
        .unwrap();
    wrong
        .add_array("psi", &ndarray::Array1::<f64>::from_elem(128, f64::NAN))
        .unwrap();
    wrong.finish().unwrap();
    let config = PipelineConfig {
        models: ModelSetRequest {
            plda: Some(dir.join("bad.npz")),
            ..Default::default()
        },
        threads: 1,
        ..Default::default()
    };
    let err = Pipeline::load(&config)
        .err()
        .expect("bad PLDA must be refused");
    assert!(err.to_string().contains("bad.npz"), "{err}");
}

#[test]
fn a_busy_shared_session_opens_another_up_to_one_per_core() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Threads 3: a config no other test here uses, so this session is ours alone.
    let shared = common::session(common::model_set().embedding, 3);
    assert_eq!(shared.replicas(), 1);
    let first = shared.lock();
    if cores >= 2 {
        // The first is busy: the next user gets a session of its own at once.
        let second = shared.lock();
        assert_eq!(shared.replicas(), 2);
        drop(second);
    }
    drop(first);
    // Free again: no more sessions are opened.
    drop(shared.lock());
    assert_eq!(shared.replicas(), cores.min(2));
}

#[test]
fn callers_racing_for_a_busy_session_open_each_extra_one_once() {
    // Threads 5: a config no other test here uses.
    let shared = common::session(common::model_set().embedding, 5);
    let start = std::sync::Barrier::new(8);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                start.wait();
                let _busy = shared.lock();
                std::thread::sleep(std::time::Duration::from_millis(100));
            });
        }
    });
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(shared.replicas() <= cores.max(1), "{}", shared.replicas());
    assert_eq!(
        shared.opens(),
        shared.replicas(),
        "a session was opened and thrown away"
    );
}
