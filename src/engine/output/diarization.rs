//! The result of a diarization: speaker turns under stable labels.

use crate::engine::clustering::{ClusteringConfig, ClusteringMethod};
pub use crate::engine::output::reconstruct::Turn;
use crate::engine::output::rttm::format_named_rttm;
use crate::engine::registry::Identities;

/// The speakers of a stream so far (or of a whole recording).
#[derive(Debug, Clone, Default)]
pub struct Diarization {
    /// Sorted by start; `speaker` is the speaker's stable label number.
    pub turns: Vec<Turn>,
    /// Distinct speakers among the turns.
    pub num_speakers: usize,
    /// Seconds of audio this result covers.
    pub duration: f64,
    /// Names of the speakers who match an enrolled voice; None without a
    /// voices file.
    pub identities: Option<Identities>,
}

impl Diarization {
    pub fn new(turns: Vec<Turn>, duration: f64) -> Self {
        let mut speakers: Vec<usize> = turns.iter().map(|t| t.speaker).collect();
        speakers.sort_unstable();
        speakers.dedup();
        Self {
            turns,
            num_speakers: speakers.len(),
            duration,
            identities: None,
        }
    }

    /// Label of speaker `i`: SPEAKER_00, SPEAKER_01, … (pyannote's names).
    pub fn label(speaker: usize) -> String {
        format!("SPEAKER_{speaker:02}")
    }

    /// The name speaker `i` earned, or its label.
    pub fn name(&self, speaker: usize) -> String {
        name_or_label(self.identities.as_ref(), speaker)
    }

    pub fn to_rttm(&self, uri: &str) -> String {
        format_named_rttm(uri, &self.turns, self.identities.as_ref())
    }
}

/// A speaker's name where it matched an enrolled voice, else its label.
pub fn name_or_label(identities: Option<&Identities>, speaker: usize) -> String {
    identities
        .and_then(|i| i.get(&speaker))
        .map_or_else(|| Diarization::label(speaker), |i| i.name.clone())
}

/// VBx needs a PLDA: a model set without one falls back to pyannote 3.1's
/// agglomerative clustering, keeping the user's speaker constraints.
pub fn effective_config(config: &ClusteringConfig, has_plda: bool) -> ClusteringConfig {
    match config.method {
        ClusteringMethod::Vbx { .. } if !has_plda => ClusteringConfig {
            num_speakers: config.num_speakers,
            min_speakers: config.min_speakers,
            max_speakers: config.max_speakers,
            ..ClusteringConfig::ahc()
        },
        _ => config.clone(),
    }
}
