//! Voices files: speakers' voice models kept between runs — enrolled
//! voices under their names, and the speakers a stream met under their
//! labels. JSON, versioned and checksummed, and tied to the embedding model
//! and PLDA the voices were computed with: features from another model set
//! would match nobody, or the wrong person.
//!
//! ```text
//! {"format": "gst-speakrs-voices", "version": 1, "sha256": "<of voices>",
//!  "voices": {"models": {"embedding_sha256": …, "plda_sha256": …},
//!             "enrolled": [{"name": "anchor", "mean": [...], "weight": 41.0}],
//!             "next_label": 3,
//!             "met": [{"label": 0, "mean": [...], "weight": 120.0, "last_seen": 3600.0}]}}
//! ```
//! `sha256` is taken over the text of `voices` exactly as it stands in the
//! file. A file that fails any check is an error and is never overwritten.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::manifest::sha256_cached;
use super::{ModelError, ModelSet};

pub const FORMAT: &str = "gst-speakrs-voices";
pub const VERSION: u32 = 1;
/// How users make a voices file, named in errors.
pub const ENROLL_COMMAND: &str =
    "cargo run --release --example enroll -- --out FILE NAME=AUDIO.wav";
/// Longest name a voice may have (it becomes a label in RTTM and tags).
pub const MAX_NAME_CHARS: usize = 64;

/// The model files voices were computed with.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelIdentity {
    pub embedding_sha256: String,
    /// None when the model set has no PLDA (voices compared by cosine).
    pub plda_sha256: Option<String>,
}

impl ModelIdentity {
    pub fn of(models: &ModelSet) -> Result<Self, ModelError> {
        Ok(Self {
            embedding_sha256: sha256_cached(&models.embedding)?,
            plda_sha256: models.plda.as_deref().map(sha256_cached).transpose()?,
        })
    }
}

/// A voice enrolled under a name: the mean of its voice features (PLDA
/// space) and how many embeddings went into it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct EnrolledVoice {
    pub name: String,
    pub mean: Vec<f64>,
    pub weight: f64,
}

/// A speaker a stream met, under its `SPEAKER_nn` label number.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct MetSpeaker {
    pub label: usize,
    pub mean: Vec<f64>,
    pub weight: f64,
    /// Stream position (s) where it was last labelled.
    pub last_seen: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Voices {
    pub models: ModelIdentity,
    pub enrolled: Vec<EnrolledVoice>,
    /// The next new speaker's label number: labels are never reused.
    pub next_label: usize,
    pub met: Vec<MetSpeaker>,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: String,
    version: u32,
    sha256: String,
    /// Kept as written: the checksum covers these very bytes.
    voices: Box<serde_json::value::RawValue>,
}

#[derive(Debug, thiserror::Error)]
pub enum VoicesError {
    #[error("voices file {path} does not exist; make one with `{ENROLL_COMMAND}`, or set voices-save=true to start one")]
    Missing { path: PathBuf },
    #[error("cannot read voices file {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("voices file {path} is corrupt ({reason}); it is left as it is: restore it, or enrol the voices again")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path} is not a gst-speakrs voices file ({reason})")]
    Foreign { path: PathBuf, reason: String },
    #[error("voices file {path} has format version {version}, made by a newer gst-speakrs; this one reads version {VERSION}")]
    Newer { path: PathBuf, version: u32 },
    #[error("voices file {path} was made with other models (embedding sha256 {file_embedding}, PLDA {file_plda}); this pipeline runs embedding {our_embedding}, PLDA {our_plda}: enrol the voices again with these models")]
    OtherModels {
        path: PathBuf,
        file_embedding: String,
        file_plda: String,
        our_embedding: String,
        our_plda: String,
    },
    #[error("cannot write voices file {path}: {reason}; the previous file is unchanged")]
    Unwritable { path: PathBuf, reason: String },
    #[error("cannot check the models for voices file {path}: {source}")]
    Models {
        path: PathBuf,
        #[source]
        source: ModelError,
    },
}

/// Whether `name` can be a speaker label: printable, no spaces (RTTM
/// fields are space-separated), and not a `SPEAKER_nn` label.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "a name has 1 to {MAX_NAME_CHARS} characters: {name:?}"
        ));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "a name has no spaces or control characters: {name:?}"
        ));
    }
    if name.starts_with("SPEAKER_") {
        return Err(format!(
            "SPEAKER_ names are the labels of unknown speakers: {name:?}"
        ));
    }
    Ok(())
}

fn checksum(voices: &serde_json::value::RawValue) -> String {
    format!("{:x}", Sha256::digest(voices.get().as_bytes()))
}

fn short(sum: Option<&str>) -> String {
    sum.map_or_else(|| "none".into(), |s| s.chars().take(12).collect())
}

impl Voices {
    pub fn new(models: ModelIdentity) -> Self {
        Self {
            models,
            ..Default::default()
        }
    }

    /// Reads and checks `path` against the models in use.
    pub fn read(path: &Path, ours: &ModelIdentity) -> Result<Self, VoicesError> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(VoicesError::Missing { path: path.into() })
            }
            Err(e) => {
                return Err(VoicesError::Unreadable {
                    path: path.into(),
                    reason: e.to_string(),
                })
            }
        };
        let corrupt = |reason: String| VoicesError::Corrupt {
            path: path.into(),
            reason,
        };
        let value: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
            if e.is_eof() {
                corrupt(format!("truncated: {e}"))
            } else if text.first().is_some_and(|b| *b == b'{') {
                corrupt(format!("not valid JSON: {e}"))
            } else {
                VoicesError::Foreign {
                    path: path.into(),
                    reason: "not JSON".into(),
                }
            }
        })?;
        let format = value.get("format").and_then(|f| f.as_str());
        if format != Some(FORMAT) {
            return Err(VoicesError::Foreign {
                path: path.into(),
                reason: format!("format {format:?}, expected {FORMAT:?}"),
            });
        }
        // From the text, not the parsed value: the checksum is of the bytes.
        let envelope: Envelope =
            serde_json::from_slice(&text).map_err(|e| corrupt(format!("envelope: {e}")))?;
        if envelope.version > VERSION {
            return Err(VoicesError::Newer {
                path: path.into(),
                version: envelope.version,
            });
        }
        let actual = checksum(&envelope.voices);
        if !actual.eq_ignore_ascii_case(&envelope.sha256) {
            return Err(corrupt(format!(
                "sha256 {actual} of its voices, the file says {}",
                envelope.sha256
            )));
        }
        let voices: Voices =
            serde_json::from_str(envelope.voices.get()).map_err(|e| corrupt(e.to_string()))?;
        if voices.models != *ours {
            return Err(VoicesError::OtherModels {
                path: path.into(),
                file_embedding: short(Some(&voices.models.embedding_sha256)),
                file_plda: short(voices.models.plda_sha256.as_deref()),
                our_embedding: short(Some(&ours.embedding_sha256)),
                our_plda: short(ours.plda_sha256.as_deref()),
            });
        }
        voices.check().map_err(corrupt)?;
        Ok(voices)
    }

    /// Consistency that a checksum cannot promise (a file written by hand
    /// or by a broken tool): names, finite features of one length.
    fn check(&self) -> Result<(), String> {
        let means = self
            .enrolled
            .iter()
            .map(|v| (&v.mean, v.weight))
            .chain(self.met.iter().map(|m| (&m.mean, m.weight)));
        let mut dimension = None;
        for (mean, weight) in means {
            if mean.is_empty() || !mean.iter().all(|v| v.is_finite()) {
                return Err("a voice has no features or non-finite ones".into());
            }
            if *dimension.get_or_insert(mean.len()) != mean.len() {
                return Err("voices of different dimensions".into());
            }
            if !(weight.is_finite() && weight > 0.0) {
                return Err(format!("a voice weighs {weight}"));
            }
        }
        let mut names: Vec<&str> = self.enrolled.iter().map(|v| v.name.as_str()).collect();
        for name in &names {
            check_name(name)?;
        }
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("the name {:?} is enrolled twice", w[0]));
        }
        let mut labels: Vec<usize> = self.met.iter().map(|m| m.label).collect();
        labels.sort_unstable();
        if labels.windows(2).any(|w| w[0] == w[1]) {
            return Err("a label is stored twice".into());
        }
        if labels.last().is_some_and(|&l| l >= self.next_label) {
            return Err("a label at or past next_label".into());
        }
        Ok(())
    }

    /// The voices' feature dimension, if any voice is stored.
    pub fn dimension(&self) -> Option<usize> {
        self.enrolled
            .first()
            .map(|v| v.mean.len())
            .or_else(|| self.met.first().map(|m| m.mean.len()))
    }

    /// Writes `path` atomically: a temporary file beside it, synced, then
    /// renamed over it, so a crash leaves the old file or the new one.
    pub fn write(&self, path: &Path) -> Result<(), VoicesError> {
        let unwritable = |reason: String| VoicesError::Unwritable {
            path: path.into(),
            reason,
        };
        self.check().map_err(&unwritable)?;
        let voices =
            serde_json::value::to_raw_value(self).map_err(|e| unwritable(e.to_string()))?;
        let envelope = Envelope {
            format: FORMAT.into(),
            version: VERSION,
            sha256: checksum(&voices),
            voices,
        };
        let text = serde_json::to_vec(&envelope).map_err(|e| unwritable(e.to_string()))?;
        let temporary = temporary_path(path);
        let written = (|| {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(&text)?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(unwritable(e.to_string()));
        }
        // The rename is durable once the directory is synced (best effort).
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

/// Whether `path` could be written (its directory takes a new file), so
/// that a pipeline learns at start, not hours later at EOS.
pub fn check_writable(path: &Path) -> Result<(), VoicesError> {
    let temporary = temporary_path(path);
    match std::fs::File::create(&temporary) {
        Ok(_) => {
            let _ = std::fs::remove_file(&temporary);
            Ok(())
        }
        Err(e) => Err(VoicesError::Unwritable {
            path: path.into(),
            reason: e.to_string(),
        }),
    }
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> ModelIdentity {
        ModelIdentity {
            embedding_sha256: "ab".repeat(32),
            plda_sha256: Some("cd".repeat(32)),
        }
    }

    fn sample() -> Voices {
        Voices {
            models: identity(),
            enrolled: vec![EnrolledVoice {
                name: "anchor".into(),
                mean: vec![0.5, -1.25, 1e-300],
                weight: 12.0,
            }],
            next_label: 4,
            met: vec![MetSpeaker {
                label: 3,
                mean: vec![0.1, 0.2, 0.30000000000000004],
                weight: 7.5,
                last_seen: 3600.25,
            }],
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("voices-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn a_written_file_reads_back_exactly() {
        let path = scratch("round.json");
        sample().write(&path).unwrap();
        assert_eq!(Voices::read(&path, &identity()).unwrap(), sample());
    }

    #[test]
    fn an_edited_file_fails_its_checksum() {
        let path = scratch("edited.json");
        sample().write(&path).unwrap();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("12.0", "13.0");
        std::fs::write(&path, text).unwrap();
        let e = Voices::read(&path, &identity()).unwrap_err();
        assert!(matches!(e, VoicesError::Corrupt { .. }), "{e}");
    }

    #[test]
    fn other_models_are_named() {
        let path = scratch("other.json");
        sample().write(&path).unwrap();
        let ours = ModelIdentity {
            plda_sha256: None,
            ..identity()
        };
        let e = Voices::read(&path, &ours).unwrap_err();
        assert!(e.to_string().contains("other models"), "{e}");
    }

    #[test]
    fn names_that_cannot_be_labels_are_refused() {
        for bad in ["", "two words", "SPEAKER_01", "tab\there"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("Anna-Lena_2").is_ok());
        let mut twice = sample();
        twice.enrolled.push(twice.enrolled[0].clone());
        assert!(twice.write(&scratch("twice.json")).is_err());
    }
}
