//! Loading errors name the file, what is wrong and the command that fixes it.

mod common;

use std::path::{Path, PathBuf};

use gstspeakrs::engine::frontend::segmentation::Segmenter;
use gstspeakrs::engine::loaded::{load_plda, EngineConfig, LoadedModels};
use gstspeakrs::models::{
    ModelError, ModelSet, ModelSetRequest, Precision, SessionConfig, SharedSession, SETUP_COMMAND,
};

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
    let config = EngineConfig {
        models: ModelSetRequest {
            segmentation: Some(set.embedding.clone()),
            ..Default::default()
        },
        threads: 1,
        ..Default::default()
    };
    let err = LoadedModels::load(&config)
        .err()
        .expect("CAM++ is no segmentation model");
    assert!(matches!(err, ModelError::Shape { .. }), "{err}");
    assert!(err.to_string().contains("campplus.onnx"), "{err}");
}

/// A segmentation model must give segmentation-3.0's 589 frames of 7
/// powerset classes per 10 s window: the engine's frame grid assumes it.
/// A model giving 588 frames (otherwise the same tiny model that is
/// accepted with 589) is refused at load, naming the file and the shape.
#[test]
fn segmentation_model_with_another_frame_count_is_refused_at_load() {
    let good = common::onnx::write_segmentation_like("seg-589x7", 589, 7);
    let bad = common::onnx::write_segmentation_like("seg-588x7", 588, 7);
    // The control: the same construction with the right shape passes the probe.
    Segmenter::new(common::session(good, 1)).unwrap_or_else(|e| panic!("589 × 7 refused: {e}"));
    let err = Segmenter::new(common::session(bad.clone(), 1))
        .err()
        .expect("588 frames per 10 s window must be refused");
    assert!(matches!(err, ModelError::Shape { .. }), "{err}");
    let msg = err.to_string();
    for needle in [&bad.display().to_string()[..], "[N, 589, 7]", "[1, 588, 7]"] {
        assert!(msg.contains(needle), "does not name `{needle}`: {msg}");
    }
    // Through the pipeline, as the element loads it: refused before any audio.
    let err = LoadedModels::load(&EngineConfig {
        models: ModelSetRequest {
            segmentation: Some(bad.clone()),
            ..Default::default()
        },
        threads: 1,
        ..Default::default()
    })
    .err()
    .expect("the pipeline must refuse 588 frames");
    assert!(matches!(err, ModelError::Shape { .. }), "{err}");
    assert!(err.to_string().contains("[N, 589, 7]"), "{err}");
}

#[test]
fn segmentation_model_with_another_class_count_is_refused_at_load() {
    let bad = common::onnx::write_segmentation_like("seg-589x4", 589, 4);
    let err = Segmenter::new(common::session(bad.clone(), 1))
        .err()
        .expect("4 classes must be refused");
    assert!(matches!(err, ModelError::Shape { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&bad.display().to_string()) && msg.contains("[1, 589, 4]"),
        "{msg}"
    );
}

fn load_with_plda(plda: &Path) -> ModelError {
    let config = EngineConfig {
        models: ModelSetRequest {
            plda: Some(plda.to_path_buf()),
            ..Default::default()
        },
        threads: 1,
        ..Default::default()
    };
    LoadedModels::load(&config)
        .err()
        .unwrap_or_else(|| panic!("{} must be refused", plda.display()))
}

/// A well-formed PLDA for 256-d embeddings (WeSpeaker's) with CAM++'s
/// 192-d ones: refused by the dimension check, naming both dimensions.
#[test]
fn plda_for_embeddings_of_another_dimension_is_refused() {
    let dir = copy_of_default_set("plda-dim");
    let path = dir.join("wide.npz");
    let mut wide = ndarray_npy::NpzWriter::new(std::fs::File::create(&path).unwrap());
    let eye = |n| ndarray::Array2::<f64>::eye(n);
    wide.add_array("mean1", &ndarray::Array1::<f64>::zeros(256))
        .unwrap();
    wide.add_array("mean2", &ndarray::Array1::<f64>::zeros(128))
        .unwrap();
    wide.add_array("lda", &eye(256).slice(ndarray::s![.., ..128]).to_owned())
        .unwrap();
    wide.add_array("mu", &ndarray::Array1::<f64>::zeros(128))
        .unwrap();
    wide.add_array("tr", &eye(128)).unwrap();
    wide.add_array("psi", &ndarray::Array1::<f64>::ones(128))
        .unwrap();
    wide.finish().unwrap();
    // Nothing else is wrong with it: it loads on its own.
    let plda = load_plda(&path).unwrap_or_else(|e| panic!("a valid 256-d PLDA: {e}"));
    assert_eq!(plda.input_dim(), 256);
    let err = load_with_plda(&path);
    assert!(matches!(err, ModelError::Shape { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("wide.npz")
            && msg.contains("256-d")
            && msg.contains("192-d")
            && msg.contains("campplus.onnx"),
        "{msg}"
    );
}

/// The default PLDA with one NaN in `psi`: refused naming the array.
#[test]
fn plda_with_nan_is_refused() {
    let dir = copy_of_default_set("plda-nan");
    let path = dir.join("nan.npz");
    common::write_plda(&path, |name, mut a| {
        if name == "psi" {
            a.iter_mut().take(1).for_each(|v| *v = f64::NAN);
        }
        a
    });
    // The control: the same copy without the NaN loads.
    let clean = dir.join("clean.npz");
    common::write_plda(&clean, |_, a| a);
    load_plda(&clean).unwrap_or_else(|e| panic!("the unchanged copy: {e}"));
    let err = load_with_plda(&path);
    assert!(matches!(err, ModelError::Shape { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("nan.npz") && msg.contains("psi") && msg.contains("NaN"),
        "{msg}"
    );
}

/// A pool of its own for the embedding model, opening at most `limit`
/// sessions (not the process-wide shared one: no other test touches it).
fn pool(limit: usize) -> SharedSession {
    let config = SessionConfig {
        model: common::model_set().embedding,
        provider: Default::default(),
        threads: 1,
        replica: 0,
    };
    SharedSession::new(config, limit).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_busy_shared_session_opens_another_and_free_ones_are_reused() {
    let shared = pool(3);
    assert_eq!((shared.replicas(), shared.opens()), (1, 1));
    let first = shared.lock();
    assert_eq!(shared.replicas(), 1, "the free first session is used");
    // The first is busy: the next user gets a session of its own at once.
    let second = shared
        .try_lock()
        .expect("another session is opened while the first is busy");
    assert_eq!((shared.replicas(), shared.opens()), (2, 2));
    drop(second);
    drop(first);
    // Free again: no more sessions are opened.
    drop(shared.lock());
    let (a, b) = (shared.lock(), shared.lock());
    drop((a, b));
    assert_eq!((shared.replicas(), shared.opens()), (2, 2));
}

/// Element starts wrap the shared sessions anew; the shape check runs a
/// model, so it must run once per session, and again only if it failed.
#[test]
fn a_session_is_checked_once_and_a_failed_check_is_tried_again() {
    let shared = pool(1);
    let runs = std::cell::Cell::new(0);
    let check = |found: Result<usize, &str>| {
        shared.checked(|| {
            runs.set(runs.get() + 1);
            found.map_err(|e| ModelError::Inference(e.into()))
        })
    };
    assert!(check(Err("not a segmentation model")).is_err());
    assert_eq!(check(Ok(192)).unwrap(), 192);
    assert_eq!(check(Ok(7)).unwrap(), 192, "the first success stands");
    assert_eq!(runs.get(), 2, "a successful check ran again");
}

#[test]
fn a_pool_at_its_limit_opens_no_more() {
    let shared = pool(2);
    let first = shared.lock();
    let second = shared.try_lock().expect("a second session is opened");
    // Both busy and no room: a caller would have to wait.
    assert!(shared.try_lock().is_none(), "a third session was opened");
    assert_eq!((shared.replicas(), shared.opens()), (2, 2));
    drop(first);
    // One handed back: it is the one reused.
    let again = shared.try_lock().expect("a free session");
    drop((again, second));
    assert_eq!((shared.replicas(), shared.opens()), (2, 2));
    assert_eq!(shared.limit(), 2);
}

#[test]
fn cpu_sessions_are_limited_to_one_per_core() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Threads 3: a config no other test here uses, so this session is ours alone.
    let shared = common::session(common::model_set().embedding, 3);
    assert_eq!(shared.limit(), cores);
    assert_eq!(shared.replicas(), 1, "sessions are opened on demand");
}

/// Eight callers start together while the first session is busy; each
/// extra session must be opened once, never opened in parallel and thrown
/// away. The first session stays busy until a caller has been served, so
/// at least one extra session is opened whatever the scheduling.
#[test]
fn callers_racing_for_a_busy_session_open_each_extra_one_once() {
    let shared = pool(4);
    let busy = shared.lock();
    let start = std::sync::Barrier::new(8);
    let (served, first_served) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let served = served.clone();
            let (shared, start) = (&shared, &start);
            scope.spawn(move || {
                start.wait();
                let session = shared.lock();
                let _ = served.send(());
                drop(session);
            });
        }
        // Only an extra session can serve anyone while `busy` is held. The
        // timeout only turns a hang (no session ever opened) into a failure.
        first_served
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("no caller served while the first session was busy: none opened");
        drop(busy);
    });
    assert!(
        (2..=4).contains(&shared.replicas()),
        "{} sessions",
        shared.replicas()
    );
    assert_eq!(
        shared.opens(),
        shared.replicas(),
        "a session was opened and thrown away"
    );
}

#[test]
fn int8_precision_uses_the_int8_file_and_an_older_set_says_how_to_get_it() {
    let int8 = |dir: &Path| {
        ModelSet::resolve(&ModelSetRequest {
            dir: Some(dir.into()),
            precision: Precision::Int8,
            ..Default::default()
        })
    };
    let dir = copy_of_default_set("int8");
    assert!(int8(&dir)
        .unwrap()
        .embedding
        .ends_with("campplus-int8.onnx"));
    assert!(resolve(&dir).unwrap().embedding.ends_with("campplus.onnx"));
    // A set converted before the int8 model existed: its manifest lacks it.
    let manifest = dir.join("manifest.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    json["files"]
        .as_object_mut()
        .unwrap()
        .remove("embedding-int8");
    std::fs::write(&manifest, json.to_string()).unwrap();
    let msg = int8(&dir).unwrap_err().to_string();
    assert!(
        msg.contains("embedding-int8") && msg.contains(SETUP_COMMAND),
        "{msg}"
    );
    // The fp32 set still loads.
    assert!(resolve(&dir).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_split_segmentation_is_used_only_from_a_set_that_has_it_and_no_override() {
    let dir = copy_of_default_set("parts");
    let parts = resolve(&dir)
        .unwrap()
        .segmentation_parts
        .expect("the default set has segmentation-3.0 in two parts");
    assert!(parts
        .filterbank
        .ends_with("segmentation-3.0-filterbank.onnx"));
    // A segmentation file of the user's own replaces the set's, parts and all.
    let overridden = ModelSet::resolve(&ModelSetRequest {
        dir: Some(dir.clone()),
        segmentation: Some(dir.join("segmentation-3.0.onnx")),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(overridden.segmentation_parts, None);
    // A set converted before the split: the whole model serves.
    let manifest = dir.join("manifest.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    for role in ["segmentation-filterbank", "segmentation-after-filterbank"] {
        json["files"].as_object_mut().unwrap().remove(role);
    }
    std::fs::write(&manifest, json.to_string()).unwrap();
    assert_eq!(resolve(&dir).unwrap().segmentation_parts, None);
    // A part the manifest names but that is damaged is an error, as any file.
    let dir = copy_of_default_set("parts-damaged");
    std::fs::write(dir.join("segmentation-3.0-filterbank.onnx"), b"not a model").unwrap();
    assert!(matches!(
        resolve(&dir).unwrap_err(),
        ModelError::Checksum { .. }
    ));
    let _ = std::fs::remove_dir_all(&dir);
}
