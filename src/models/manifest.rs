//! Model sets on disk. The default set comes with a `manifest.json` written
//! by the set-up (file names, sha256, provenance, licence); loading checks it
//! and names precisely what is missing or corrupt. A directory without a
//! manifest (a user's pyannote / speakrs export) is searched by file name.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{paths, ModelError};

pub const MANIFEST: &str = "manifest.json";

/// Which of the set's CAM++ files to embed with (the `precision` property).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// The converted model as trained.
    #[default]
    Fp32,
    /// Most of its convolutions in int8 (`campplus-int8.onnx`): faster on
    /// CPU, embeddings at cosine ≈ 0.995 to fp32 (docs/performance.md).
    Int8,
}

impl Precision {
    /// The manifest role and the file names searched without a manifest.
    fn embedding(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Precision::Fp32 => ("embedding", EMBEDDING_NAMES),
            Precision::Int8 => ("embedding-int8", EMBEDDING_INT8_NAMES),
        }
    }
}

/// What the user asked for: a directory and optional single-file overrides
/// (an `embedding` file is used whatever the `precision`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ModelSetRequest {
    pub dir: Option<PathBuf>,
    pub segmentation: Option<PathBuf>,
    pub embedding: Option<PathBuf>,
    pub plda: Option<PathBuf>,
    pub precision: Precision,
}

/// Resolved, verified files of one model set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSet {
    pub dir: PathBuf,
    pub segmentation: PathBuf,
    pub embedding: PathBuf,
    /// A PLDA: a `.npz` file (ours or pyannote's `plda.npz` beside
    /// `xvec_transform.npz`) or a directory of speakrs `plda_*.npy` files.
    pub plda: Option<PathBuf>,
    /// The segmentation model in two parts, when the set has them and no
    /// `segmentation` file overrides it: overlapping windows then share
    /// one pass of the sinc filterbank over the audio.
    pub segmentation_parts: Option<SegmentationParts>,
}

/// segmentation-3.0 split after its sinc filterbank (tools/convert_models.py).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentationParts {
    /// Audio `[1, 1, T]` → filterbank `[1, 80, (T − 251) / 10 + 1]`.
    pub filterbank: PathBuf,
    /// Windows `[N, 1, 160000]` and their filterbanks `[N, 80, 15975]` →
    /// the whole model's `[N, 589, 7]`.
    pub after_filterbank: PathBuf,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    files: HashMap<String, ManifestEntry>,
}

#[derive(Debug, Deserialize)]
struct ManifestEntry {
    file: String,
    sha256: String,
}

const SEGMENTATION_NAMES: &[&str] = &["segmentation-3.0.onnx", "segmentation.onnx"];
const EMBEDDING_NAMES: &[&str] = &[
    "campplus.onnx",
    "wespeaker-voxceleb-resnet34.onnx",
    "embedding.onnx",
];
const EMBEDDING_INT8_NAMES: &[&str] = &["campplus-int8.onnx"];
const PLDA_NAMES: &[&str] = &[
    "campplus-plda.npz",
    "plda/plda.npz",
    "plda.npz",
    "plda_tr.npy",
];

impl ModelSet {
    pub fn resolve(request: &ModelSetRequest) -> Result<ModelSet, ModelError> {
        let dir = request.dir.clone().unwrap_or_else(paths::default_model_dir);
        let manifest_path = dir.join(MANIFEST);
        let mut set = if manifest_path.exists() {
            Self::from_manifest(&dir, &manifest_path, request)?
        } else {
            Self::by_name(&dir, request)?
        };
        if let Some(p) = &request.segmentation {
            set.segmentation = existing(p, "segmentation model (segmentation-model property)")?;
        }
        if let Some(p) = &request.embedding {
            set.embedding = existing(p, "embedding model (embedding-model property)")?;
        }
        if let Some(p) = &request.plda {
            set.plda = Some(existing(p, "PLDA (plda property)")?);
        }
        Ok(set)
    }

    fn from_manifest(
        dir: &Path,
        manifest_path: &Path,
        request: &ModelSetRequest,
    ) -> Result<ModelSet, ModelError> {
        let text = std::fs::read_to_string(manifest_path).map_err(|e| ModelError::Manifest {
            path: manifest_path.into(),
            reason: e.to_string(),
        })?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| ModelError::Manifest {
            path: manifest_path.into(),
            reason: e.to_string(),
        })?;
        // Files the user overrides need not be present in the set.
        let verify = |role: &str, overridden: bool| -> Result<Option<PathBuf>, ModelError> {
            let Some(entry) = manifest.files.get(role) else {
                return if overridden || role == "plda" {
                    Ok(None)
                } else {
                    Err(ModelError::Manifest {
                        path: manifest_path.into(),
                        reason: format!(
                            "no `{role}` entry (a set converted before the file existed gains it by re-running the set-up)"
                        ),
                    })
                };
            };
            let path = dir.join(&entry.file);
            if overridden {
                return Ok(Some(path));
            }
            verify_file(&path, &entry.sha256, role).map(Some)
        };
        let segmentation = verify("segmentation", request.segmentation.is_some())?;
        let (embedding_role, _) = request.precision.embedding();
        let embedding = verify(embedding_role, request.embedding.is_some())?;
        let plda = verify("plda", request.plda.is_some())?;
        // Sets converted before the split lack both parts: the whole model serves.
        let parts = ["segmentation-filterbank", "segmentation-after-filterbank"];
        let segmentation_parts = if request.segmentation.is_none()
            && parts.iter().all(|role| manifest.files.contains_key(*role))
        {
            Some(SegmentationParts {
                filterbank: verify(parts[0], false)?.unwrap_or_default(),
                after_filterbank: verify(parts[1], false)?.unwrap_or_default(),
            })
        } else {
            None
        };
        Ok(ModelSet {
            dir: dir.to_path_buf(),
            segmentation: segmentation.unwrap_or_default(),
            embedding: embedding.unwrap_or_default(),
            plda,
            segmentation_parts,
        })
    }

    fn by_name(dir: &Path, request: &ModelSetRequest) -> Result<ModelSet, ModelError> {
        if !dir.is_dir() && (request.segmentation.is_none() || request.embedding.is_none()) {
            return Err(ModelError::Missing {
                path: dir.join(MANIFEST),
                what: "model directory with its manifest".into(),
            });
        }
        let find = |names: &[&str]| names.iter().map(|n| dir.join(n)).find(|p| p.exists());
        let missing = |what: &str, names: &[&str]| ModelError::Missing {
            path: dir.join(names[0]),
            what: format!("{what}; looked for {} and no {MANIFEST}", names.join(", ")),
        };
        let segmentation = match (&request.segmentation, find(SEGMENTATION_NAMES)) {
            (Some(p), _) => p.clone(),
            (None, Some(p)) => p,
            (None, None) => return Err(missing("segmentation model", SEGMENTATION_NAMES)),
        };
        let (_, embedding_names) = request.precision.embedding();
        let embedding = match (&request.embedding, find(embedding_names)) {
            (Some(p), _) => p.clone(),
            (None, Some(p)) => p,
            (None, None) => return Err(missing("embedding model", embedding_names)),
        };
        // speakrs keeps its PLDA as plda_*.npy beside the models: point at the directory.
        let plda = find(PLDA_NAMES).map(|p| {
            if p.ends_with("plda_tr.npy") {
                dir.to_path_buf()
            } else {
                p
            }
        });
        Ok(ModelSet {
            dir: dir.to_path_buf(),
            segmentation,
            embedding,
            plda,
            segmentation_parts: None,
        })
    }
}

fn existing(path: &Path, what: &str) -> Result<PathBuf, ModelError> {
    if path.exists() {
        Ok(path.to_path_buf())
    } else {
        Err(ModelError::Missing {
            path: path.into(),
            what: what.into(),
        })
    }
}

/// A checked file: path, length and mtime.
type FileKey = (PathBuf, u64, SystemTime);

/// Checked files and their hashes, so that many elements in one process
/// hash a 28 MB model once.
static VERIFIED: Mutex<Option<HashMap<FileKey, String>>> = Mutex::new(None);

fn verify_file(path: &Path, expected: &str, role: &str) -> Result<PathBuf, ModelError> {
    let missing = || ModelError::Missing {
        path: path.into(),
        what: format!("{role} model named in {MANIFEST}"),
    };
    let meta = std::fs::metadata(path).map_err(|_| missing())?;
    // Hashing a device or FIFO the manifest names (/dev/zero) would never end.
    if !meta.is_file() {
        return Err(missing());
    }
    let actual = sha256_of_file(path, &meta)?;
    if actual.eq_ignore_ascii_case(expected) {
        Ok(path.to_path_buf())
    } else {
        Err(ModelError::Checksum {
            path: path.into(),
            expected: expected.into(),
            actual,
        })
    }
}

/// The sha256 of a regular file, hashed once per process while its length
/// and mtime stay the same.
pub fn sha256_cached(path: &Path) -> Result<String, ModelError> {
    let meta = std::fs::metadata(path).map_err(|e| ModelError::Io {
        path: path.into(),
        reason: e.to_string(),
    })?;
    if !meta.is_file() {
        return Err(ModelError::Io {
            path: path.into(),
            reason: "not a regular file".into(),
        });
    }
    sha256_of_file(path, &meta)
}

fn sha256_of_file(path: &Path, meta: &std::fs::Metadata) -> Result<String, ModelError> {
    let key = (
        path.to_path_buf(),
        meta.len(),
        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    );
    let cached = VERIFIED
        .lock()
        .ok()
        .and_then(|m| m.as_ref().and_then(|m| m.get(&key).cloned()));
    if let Some(sum) = cached {
        return Ok(sum);
    }
    let sum = sha256_file(path)?;
    if let Ok(mut m) = VERIFIED.lock() {
        m.get_or_insert_with(HashMap::new).insert(key, sum.clone());
    }
    Ok(sum)
}

pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let io = |e: std::io::Error| ModelError::Io {
        path: path.into(),
        reason: e.to_string(),
    };
    let mut file = File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found while writing fuzz/fuzz_targets/manifest.rs: an entry naming
    /// a device made the state change hash it forever.
    #[test]
    fn entries_naming_a_device_or_directory_are_missing() {
        for file in ["/dev/zero", "/"] {
            let err = verify_file(Path::new(file), "00", "segmentation").unwrap_err();
            assert!(matches!(err, ModelError::Missing { .. }), "{file}: {err}");
        }
    }
}
