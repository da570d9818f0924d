//! From chunk analyses to speaker turns: count, cluster, reconstruct.

use ndarray::Array2;

use super::analysis::Analyses;
use super::clustering::{cluster, ClusteringConfig, ClusteringMethod};
use super::count::{speaker_count, FrameGrid};
use super::pipeline::Pipeline;
use super::reconstruct::{reconstruct, turns};
pub use super::reconstruct::Turn;
use super::rttm::format_rttm;
use crate::models::ModelError;

/// The speakers of a stream so far (or of a whole recording).
#[derive(Debug, Clone, Default)]
pub struct Diarization {
    /// Sorted by start; `speaker` indexes `centroids` rows, 0..num_speakers.
    pub turns: Vec<Turn>,
    pub num_speakers: usize,
    /// Seconds of audio this result covers.
    pub duration: f64,
    /// Raw-embedding centroid of each speaker `[num_speakers, D]`.
    pub centroids: Array2<f32>,
}

impl Diarization {
    /// Label of speaker `i`: SPEAKER_00, SPEAKER_01, … (pyannote's names).
    pub fn label(speaker: usize) -> String {
        format!("SPEAKER_{speaker:02}")
    }

    pub fn to_rttm(&self, uri: &str) -> String {
        format_rttm(uri, &self.turns)
    }
}

/// Clusters all analyses of a stream whose chunks start every `step` s.
pub fn cluster_analyses(analyses: &Analyses, step: f64, duration: f64, pipeline: &Pipeline) -> Result<Diarization, ModelError> {
    if analyses.is_empty() {
        return Ok(Diarization { duration, ..Default::default() });
    }
    let fail = |stage: &str, e: &dyn std::fmt::Display| ModelError::Inference(format!("{stage}: {e}"));
    let binarized = analyses.binarized();
    let embeddings = analyses.embeddings();
    let count = speaker_count(binarized.view(), step).map_err(|e| fail("speaker count", &e))?;
    let config = effective_config(&pipeline.clustering, pipeline.plda.is_some());
    let clusters = cluster(embeddings.view(), binarized.view(), pipeline.plda.as_deref(), &config)
        .map_err(|e| fail("clustering", &e))?;
    let discrete = reconstruct(binarized.view(), clusters.hard_clusters.view(), &count, step)
        .map_err(|e| fail("reconstruction", &e))?;
    let mut found = turns(discrete.view(), &FrameGrid::default(), duration);
    // Speakers are numbered by cluster; drop clusters without turns so labels stay dense.
    let k = clusters.centroids.nrows();
    let width = discrete.ncols().max(k);
    let mut used = vec![false; width];
    for t in &found {
        used[t.speaker] = true;
    }
    let kept: Vec<usize> = (0..width).filter(|&i| used[i]).collect();
    let mut map = vec![0; width];
    for (new, &old) in kept.iter().enumerate() {
        map[old] = new;
    }
    for t in &mut found {
        t.speaker = map[t.speaker];
    }
    let dim = clusters.centroids.ncols();
    let mut centroids = Array2::<f32>::zeros((kept.len(), dim));
    for (row, &c) in kept.iter().enumerate() {
        if c < k {
            centroids.row_mut(row).assign(&clusters.centroids.row(c));
        }
    }
    Ok(Diarization { turns: found, num_speakers: kept.len(), duration, centroids })
}

/// VBx needs a PLDA: a model set without one falls back to pyannote 3.1's
/// agglomerative clustering, keeping the user's speaker constraints.
fn effective_config(config: &ClusteringConfig, has_plda: bool) -> ClusteringConfig {
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
