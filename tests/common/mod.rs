//! Shared helpers for the integration tests: paths into ../shared and the
//! prepared default models.
#![allow(dead_code)]

#[path = "../../examples/common/der.rs"]
pub mod der;
pub mod onnx;
pub mod stand_ins;
#[path = "../../examples/common/wav.rs"]
pub mod wav;

use std::path::PathBuf;

use ndarray::ArrayD;
use ndarray_npy::ReadNpyExt;

pub fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

pub fn reference(rel: &str) -> PathBuf {
    shared().join("reference").join(rel)
}

pub fn npy_f32(rel: &str) -> ArrayD<f32> {
    let path = reference(rel);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ArrayD::<f32>::read_npy(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The default model set; the tests need `scripts/setup.sh` to have run.
pub fn model_set() -> gstspeakrs::models::ModelSet {
    gstspeakrs::models::ModelSet::resolve(&Default::default())
        .unwrap_or_else(|e| panic!("default models unavailable ({e}); run scripts/setup.sh first"))
}

pub fn session(
    model: PathBuf,
    threads: usize,
) -> std::sync::Arc<gstspeakrs::models::SharedSession> {
    gstspeakrs::models::pool::session(&gstspeakrs::models::SessionConfig {
        model,
        provider: Default::default(),
        threads,
        replica: 0,
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// Runs the `#[ignore]`d test `name` of this test binary in a child process
/// with `env` set from its start, so that no test changes the environment
/// while threads (GStreamer's, ONNX Runtime's) may read it. Fails unless
/// the child ran exactly that test and it passed.
pub fn run_in_child(name: &str, env: &[(&str, &std::ffi::OsStr)]) {
    let exe = std::env::current_exe().expect("the test binary");
    let mut command = std::process::Command::new(exe);
    command.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child test {name} failed or did not run:\n{stdout}\n{stderr}"
    );
    eprint!("{stderr}");
}

/// A PLDA file at `path` holding the default PLDA's arrays with `f` applied
/// to each (named without `.npy`): one damaged copy per negative test.
pub fn write_plda(
    path: &std::path::Path,
    f: impl Fn(&str, ndarray::ArrayD<f64>) -> ndarray::ArrayD<f64>,
) {
    let source = model_set().plda.expect("default PLDA");
    let mut reader = ndarray_npy::NpzReader::new(std::fs::File::open(source).unwrap()).unwrap();
    let mut writer = ndarray_npy::NpzWriter::new(std::fs::File::create(path).unwrap());
    for name in reader.names().unwrap() {
        let a: ndarray::ArrayD<f64> =
            match reader.by_name::<ndarray::OwnedRepr<f64>, ndarray::IxDyn>(&name) {
                Ok(a) => a,
                Err(_) => reader
                    .by_name::<ndarray::OwnedRepr<f32>, ndarray::IxDyn>(&name)
                    .unwrap()
                    .mapv(f64::from),
            };
        let key = name.trim_end_matches(".npy").to_string();
        writer.add_array(key.as_str(), &f(&key, a)).unwrap();
    }
    writer.finish().unwrap();
}
