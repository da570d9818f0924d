//! The result of a diarization: speaker turns under stable labels.

use crate::engine::clustering::{ClusteringConfig, ClusteringMethod};
pub use crate::engine::output::reconstruct::Turn;
use crate::engine::output::rttm::format_rttm;

/// The speakers of a stream so far (or of a whole recording).
#[derive(Debug, Clone, Default)]
pub struct Diarization {
    /// Sorted by start; `speaker` is the speaker's stable label number.
    pub turns: Vec<Turn>,
    /// Distinct speakers among the turns.
    pub num_speakers: usize,
    /// Seconds of audio this result covers.
    pub duration: f64,
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
        }
    }

    /// Label of speaker `i`: SPEAKER_00, SPEAKER_01, … (pyannote's names).
    pub fn label(speaker: usize) -> String {
        format!("SPEAKER_{speaker:02}")
    }

    pub fn to_rttm(&self, uri: &str) -> String {
        format_rttm(uri, &self.turns)
    }
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
