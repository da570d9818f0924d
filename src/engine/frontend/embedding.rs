//! Speaker embeddings of each active (chunk, local speaker) (docs/design.md §4).
//! Like pyannote-ref, CAM++ sees only the fbank frames where the speaker is
//! active (clean frames when there are enough), and of those at most the
//! middle 3 s: cheaper than the whole chunk, and at a 1 s step consecutive
//! chunks then embed different stretches of a long turn.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2, Axis};
use ort::value::TensorRef;

use crate::engine::config::{
    CHUNK_SAMPLES, FBANK_BINS, FBANK_FRAMES_PER_CHUNK, FRAMES_PER_CHUNK, FRAME_DURATION,
    FRAME_STEP, LOCAL_SPEAKERS, MIN_EMBEDDING_FBANK_FRAMES, MIN_EMBEDDING_SAMPLES, SAMPLE_RATE,
};
use crate::engine::frontend::fbank;
use crate::engine::profile::{self, Stage};
use crate::models::{ModelError, SharedSession};

/// Segmentation-frame mask each local speaker's embedding is computed from:
/// its clean (non-overlapped) frames when it has more than pyannote's
/// minimum, else all its frames; `None` when the speaker is silent.
pub fn speaker_masks(activity: ArrayView2<f32>) -> [Option<Vec<bool>>; LOCAL_SPEAKERS] {
    let min_clean = (FRAMES_PER_CHUNK * MIN_EMBEDDING_SAMPLES).div_ceil(CHUNK_SAMPLES);
    let active_count: Vec<f32> = activity.axis_iter(Axis(0)).map(|r| r.sum()).collect();
    std::array::from_fn(|k| {
        let full: Vec<bool> = activity.column(k).iter().map(|&a| a > 0.0).collect();
        if !full.iter().any(|&a| a) {
            return None;
        }
        let clean: Vec<bool> = full
            .iter()
            .zip(&active_count)
            .map(|(&a, &n)| a && n < 1.5)
            .collect();
        if clean.iter().filter(|&&c| c).count() > min_clean {
            Some(clean)
        } else {
            Some(full)
        }
    })
}

/// Fbank frames `[selected, 80]` whose segmentation frame is in `mask`,
/// the middle `max_frames` of them when there are more.
/// Fbank frame i maps to segmentation frame floor(i · 589 / 998), as in pyannote.
pub fn select_frames(fbank: ArrayView2<f32>, mask: &[bool], max_frames: usize) -> Array2<f32> {
    let seg_frames = mask.len();
    let rows: Vec<usize> = (0..fbank.nrows())
        .filter(|&i| {
            mask.get(i * seg_frames / FBANK_FRAMES_PER_CHUNK)
                .copied()
                .unwrap_or(false)
        })
        .collect();
    let surplus = rows.len().saturating_sub(max_frames);
    let middle = &rows[surplus / 2..surplus / 2 + rows.len().min(max_frames)];
    fbank.select(Axis(0), middle)
}

/// What CAM++ sees of each speaker of one chunk: the chunk's log-mel with
/// its mean over the whole chunk removed (pyannote), then the fbank frames
/// of the speaker's segmentation-frame mask (at most `max_frames`, see
/// `MAX_EMBEDDING_FBANK_FRAMES`); `None` for a silent speaker.
/// Inference and PLDA training (`examples/train_plda.rs`) both go through
/// here, so the PLDA is fitted on the features it will score.
pub fn speaker_features(
    mut chunk_log_mel: Array2<f32>,
    masks: &[Option<Vec<bool>>],
    max_frames: usize,
) -> Vec<Option<Array2<f32>>> {
    if masks.iter().all(Option::is_none) {
        return vec![None; masks.len()];
    }
    fbank::subtract_time_mean(&mut chunk_log_mel);
    masks
        .iter()
        .map(|mask| {
            mask.as_ref()
                .map(|m| select_frames(chunk_log_mel.view(), m, max_frames))
        })
        .collect()
}

/// Segmentation-frame mask of a chunk for a speaker active over samples
/// `[from, to)` of it: the frames whose middle lies in that span.
pub fn span_mask(from: usize, to: usize) -> Vec<bool> {
    (0..FRAMES_PER_CHUNK)
        .map(|i| {
            let middle = (i as f64 * FRAME_STEP + 0.5 * FRAME_DURATION) * f64::from(SAMPLE_RATE);
            middle >= from as f64 && middle < to as f64
        })
        .collect()
}

pub struct Embedder {
    session: Arc<SharedSession>,
    dimension: usize,
}

impl Embedder {
    /// Wraps a session after checking it maps `[1, T, 80]` fbank to `[1, D]`.
    pub fn new(session: Arc<SharedSession>) -> Result<Self, ModelError> {
        let mut embedder = Self {
            session,
            dimension: 0,
        };
        embedder.dimension = embedder.session.checked(|| {
            let probe = embedder
                .run(Array2::<f32>::zeros((200, FBANK_BINS)).view())
                .map_err(|e| ModelError::Shape {
                    path: embedder.session.path.clone(),
                    reason: format!("not an embedding model taking [N, frames, 80] fbank ({e})"),
                })?;
            if probe.is_empty() {
                return Err(ModelError::Shape {
                    path: embedder.session.path.clone(),
                    reason: "embedding model returned an empty embedding for [1, 200, 80] fbank"
                        .into(),
                });
            }
            Ok(probe.len())
        })?;
        Ok(embedder)
    }

    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// The embedding of `feats` `[T, 80]`; `None` when T is below CAM++'s minimum.
    pub fn embed(&self, feats: ArrayView2<f32>) -> Result<Option<Vec<f32>>, ModelError> {
        if feats.nrows() < MIN_EMBEDDING_FBANK_FRAMES {
            return Ok(None);
        }
        let started = profile::start();
        let embedding = self.run(feats);
        profile::record(Stage::Embedding, started);
        profile::embedded(feats.nrows());
        embedding.map(Some)
    }

    fn run(&self, feats: ArrayView2<f32>) -> Result<Vec<f32>, ModelError> {
        let fail = |e: ort::Error| {
            ModelError::Inference(format!("embedding ({}): {e}", self.session.path.display()))
        };
        let input = feats.as_standard_layout().insert_axis(Axis(0)).to_owned();
        let tensor = TensorRef::from_array_view(input.view()).map_err(fail)?;
        let mut session = self.session.lock();
        let outputs = session.run(ort::inputs![tensor]).map_err(fail)?;
        let (shape, data) = outputs[0].try_extract_tensor::<f32>().map_err(fail)?;
        if shape.len() != 2 || shape[0] != 1 {
            return Err(ModelError::Shape {
                path: self.session.path.clone(),
                reason: format!("embedding output must be [1, D], got {shape:?}"),
            });
        }
        Ok(data.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::MAX_EMBEDDING_FBANK_FRAMES;

    #[test]
    fn a_long_turn_is_embedded_from_its_middle_three_seconds() {
        // Row i of the fbank holds the value i, so the selected rows show.
        let fbank = Array2::from_shape_fn((FBANK_FRAMES_PER_CHUNK, FBANK_BINS), |(i, _)| i as f32);
        let everywhere = vec![true; FRAMES_PER_CHUNK];
        let selected = select_frames(fbank.view(), &everywhere, MAX_EMBEDDING_FBANK_FRAMES);
        assert_eq!(selected.nrows(), MAX_EMBEDDING_FBANK_FRAMES);
        let surplus = FBANK_FRAMES_PER_CHUNK - MAX_EMBEDDING_FBANK_FRAMES;
        assert_eq!(selected[[0, 0]], (surplus / 2) as f32);
        // A short turn keeps every one of its frames.
        let short: Vec<bool> = (0..FRAMES_PER_CHUNK)
            .map(|i| (100..150).contains(&i))
            .collect();
        let rows = select_frames(fbank.view(), &short, MAX_EMBEDDING_FBANK_FRAMES);
        assert!(rows.nrows() < MAX_EMBEDDING_FBANK_FRAMES && rows.nrows() > 80);
        assert_eq!(
            rows.nrows(),
            (0..FBANK_FRAMES_PER_CHUNK)
                .filter(|i| (100..150).contains(&(i * FRAMES_PER_CHUNK / FBANK_FRAMES_PER_CHUNK)))
                .count()
        );
    }
}
