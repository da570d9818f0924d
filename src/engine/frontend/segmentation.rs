//! Segmentation-3.0 inference and powerset decoding (docs/design.md §2).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ndarray::{Array2, Array3, ArrayView2, Axis};
use ort::value::TensorRef;

use crate::engine::config::{
    CHUNK_SAMPLES, CHUNK_SECONDS, FRAMES_PER_CHUNK, LOCAL_SPEAKERS, POWERSET_CLASSES,
};
use crate::models::{ModelError, SharedSession};

/// Local speakers of each powerset class: {}, {0}, {1}, {2}, {0,1}, {0,2}, {1,2}.
pub const POWERSET: [&[usize]; POWERSET_CLASSES] =
    [&[], &[0], &[1], &[2], &[0, 1], &[0, 2], &[1, 2]];

pub struct Segmenter {
    session: Arc<SharedSession>,
    /// Batches segmented, the shape check included.
    batches: AtomicU64,
}

impl Segmenter {
    /// Wraps a session after checking that it maps a 10 s window `[N, 1,
    /// 160000]` to `[N, 589, 7]`: the rest of the engine assumes
    /// segmentation-3.0's frame grid and powerset, so a model with another
    /// frame count or class count is refused here rather than failing
    /// mid-stream.
    pub fn new(session: Arc<SharedSession>) -> Result<Self, ModelError> {
        let segmenter = Self {
            session,
            batches: AtomicU64::new(0),
        };
        let expected = format!(
            "[N, {FRAMES_PER_CHUNK}, {POWERSET_CLASSES}] ({FRAMES_PER_CHUNK} frames of \
             {POWERSET_CLASSES} powerset classes per {CHUNK_SECONDS} s window of \
             {CHUNK_SAMPLES} samples, as segmentation-3.0)"
        );
        segmenter.session.checked(|| {
            let probe = segmenter
                .log_probabilities(&[&vec![0.0; CHUNK_SAMPLES][..]])
                .map_err(|e| ModelError::Shape {
                    path: segmenter.session.path.clone(),
                    reason: format!(
                        "not a segmentation model taking a [N, 1, samples] waveform and \
                         giving {expected} ({e})"
                    ),
                })?;
            if probe.shape()[1..] != [FRAMES_PER_CHUNK, POWERSET_CLASSES] {
                return Err(ModelError::Shape {
                    path: segmenter.session.path.clone(),
                    reason: format!(
                        "segmentation must output {expected}, got {:?}",
                        probe.shape()
                    ),
                });
            }
            Ok(FRAMES_PER_CHUNK)
        })?;
        Ok(segmenter)
    }

    /// Batches this session has segmented: which workers did the work.
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Log-probabilities `[chunks, frames, 7]` for equally long chunks.
    pub fn log_probabilities(&self, chunks: &[&[f32]]) -> Result<Array3<f32>, ModelError> {
        self.batches.fetch_add(1, Ordering::Relaxed);
        let len = chunks.first().map_or(0, |c| c.len());
        let mut input = Array3::<f32>::zeros((chunks.len(), 1, len));
        for (mut row, chunk) in input.axis_iter_mut(Axis(0)).zip(chunks) {
            row.row_mut(0).assign(&ndarray::ArrayView1::from(*chunk));
        }
        let fail = |e: ort::Error| {
            ModelError::Inference(format!(
                "segmentation ({}): {e}",
                self.session.path.display()
            ))
        };
        let tensor = TensorRef::from_array_view(input.view()).map_err(fail)?;
        let mut session = self.session.lock();
        let outputs = session.run(ort::inputs![tensor]).map_err(fail)?;
        let out = outputs[0].try_extract_array::<f32>().map_err(fail)?;
        out.into_dimensionality::<ndarray::Ix3>()
            .map(|a| a.to_owned())
            .map_err(|e| ModelError::Shape {
                path: self.session.path.clone(),
                reason: e.to_string(),
            })
    }
}

/// Hard powerset decoding: argmax class per frame → binary activity `[frames, 3]`.
pub fn decode_powerset(log_probs: ArrayView2<f32>) -> Array2<f32> {
    let mut activity = Array2::<f32>::zeros((log_probs.nrows(), LOCAL_SPEAKERS));
    for (frame, scores) in log_probs.axis_iter(Axis(0)).enumerate() {
        // NaN scores (garbage input) never win, so such a frame decodes as silence.
        let mut best = 0;
        for (class, &s) in scores.iter().enumerate() {
            if s > scores[best] || scores[best].is_nan() && !s.is_nan() {
                best = class;
            }
        }
        for &speaker in POWERSET[best] {
            activity[[frame, speaker]] = 1.0;
        }
    }
    activity
}
