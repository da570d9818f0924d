//! Segmentation-3.0 inference and powerset decoding (docs/design.md §2).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ndarray::{s, Array2, Array3, ArrayView2, Axis};
use ort::value::TensorRef;

use crate::engine::config::{
    CHUNK_SAMPLES, CHUNK_SECONDS, FRAMES_PER_CHUNK, LOCAL_SPEAKERS, POWERSET_CLASSES, SINC_STRIDE,
    SINC_TAPS,
};
use crate::models::{ModelError, SharedSession};

/// Local speakers of each powerset class: {}, {0}, {1}, {2}, {0,1}, {0,2}, {1,2}.
pub const POWERSET: [&[usize]; POWERSET_CLASSES] =
    [&[], &[0], &[1], &[2], &[0, 1], &[0, 2], &[1, 2]];

pub struct Segmenter {
    model: Model,
    /// Batches segmented, the shape check included.
    batches: AtomicU64,
    /// Audio samples the split model's filterbank pass has filtered.
    filtered_samples: AtomicU64,
}

enum Model {
    Whole(Arc<SharedSession>),
    /// Split after the sinc filterbank (`SegmentationParts`): windows that
    /// overlap share one filterbank pass over their audio, which at a 1 s
    /// step and batches of 4 is a third of the filterbank work.
    Split {
        filterbank: Arc<SharedSession>,
        after_filterbank: Arc<SharedSession>,
    },
}

impl Segmenter {
    /// Wraps a session after checking that it maps a 10 s window `[N, 1,
    /// 160000]` to `[N, 589, 7]`: the rest of the engine assumes
    /// segmentation-3.0's frame grid and powerset, so a model with another
    /// frame count or class count is refused here rather than failing
    /// mid-stream.
    pub fn new(session: Arc<SharedSession>) -> Result<Self, ModelError> {
        Self::checked(Model::Whole(session))
    }

    /// The model in two parts: the sinc filterbank alone, and the rest
    /// taking the windows and their filterbanks; checked as [`Segmenter::new`].
    pub fn split(
        filterbank: Arc<SharedSession>,
        after_filterbank: Arc<SharedSession>,
    ) -> Result<Self, ModelError> {
        Self::checked(Model::Split {
            filterbank,
            after_filterbank,
        })
    }

    /// The session whose path errors name and whose check is cached.
    fn main_session(&self) -> &Arc<SharedSession> {
        match &self.model {
            Model::Whole(session) => session,
            Model::Split {
                after_filterbank, ..
            } => after_filterbank,
        }
    }

    fn checked(model: Model) -> Result<Self, ModelError> {
        let segmenter = Self {
            model,
            batches: AtomicU64::new(0),
            filtered_samples: AtomicU64::new(0),
        };
        let session = segmenter.main_session();
        let expected = format!(
            "[N, {FRAMES_PER_CHUNK}, {POWERSET_CLASSES}] ({FRAMES_PER_CHUNK} frames of \
             {POWERSET_CLASSES} powerset classes per {CHUNK_SECONDS} s window of \
             {CHUNK_SAMPLES} samples, as segmentation-3.0)"
        );
        session.checked(|| {
            let probe = segmenter
                .log_probabilities(&[&vec![0.0; CHUNK_SAMPLES][..]])
                .map_err(|e| ModelError::Shape {
                    path: session.path.clone(),
                    reason: format!(
                        "not a segmentation model taking a [N, 1, samples] waveform and \
                         giving {expected} ({e})"
                    ),
                })?;
            if probe.shape()[1..] != [FRAMES_PER_CHUNK, POWERSET_CLASSES] {
                return Err(ModelError::Shape {
                    path: session.path.clone(),
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

    /// Audio samples that went through the sinc filterbank on its own
    /// (the split model; 0 for the whole one): shared audio counts once.
    pub fn filtered_samples(&self) -> u64 {
        self.filtered_samples.load(Ordering::Relaxed)
    }

    /// Log-probabilities `[chunks, frames, 7]` for equally long chunks.
    pub fn log_probabilities(&self, chunks: &[&[f32]]) -> Result<Array3<f32>, ModelError> {
        // One position for all: none continues another, so none shares audio.
        let placed: Vec<(usize, &[f32])> = chunks.iter().map(|c| (0, *c)).collect();
        self.log_probabilities_at(&placed)
    }

    /// As [`Segmenter::log_probabilities`], for chunks given with the
    /// stream position (in samples) of their first sample, so that chunks
    /// overlapping the one before share its filterbank.
    pub fn log_probabilities_at(
        &self,
        chunks: &[(usize, &[f32])],
    ) -> Result<Array3<f32>, ModelError> {
        self.batches.fetch_add(1, Ordering::Relaxed);
        let len = chunks.first().map_or(0, |(_, c)| c.len());
        let mut input = Array3::<f32>::zeros((chunks.len(), 1, len));
        for (mut row, (_, chunk)) in input.axis_iter_mut(Axis(0)).zip(chunks) {
            row.row_mut(0).assign(&ndarray::ArrayView1::from(*chunk));
        }
        let session = self.main_session();
        let fail = |e: ort::Error| {
            ModelError::Inference(format!("segmentation ({}): {e}", session.path.display()))
        };
        let waveform = TensorRef::from_array_view(input.view()).map_err(fail)?;
        let log_probs = match &self.model {
            Model::Whole(session) => {
                let mut session = session.lock();
                let outputs = session.run(ort::inputs![waveform]).map_err(fail)?;
                outputs[0]
                    .try_extract_array::<f32>()
                    .map_err(fail)?
                    .to_owned()
            }
            Model::Split {
                filterbank,
                after_filterbank,
            } => {
                let filterbanks = shared_filterbanks(filterbank, chunks, &self.filtered_samples)?;
                let filterbanks = TensorRef::from_array_view(filterbanks.view()).map_err(fail)?;
                let mut session = after_filterbank.lock();
                let outputs = session
                    .run(ort::inputs!["waveform" => waveform, "filterbank" => filterbanks])
                    .map_err(fail)?;
                outputs[0]
                    .try_extract_array::<f32>()
                    .map_err(fail)?
                    .to_owned()
            }
        };
        log_probs
            .into_dimensionality::<ndarray::Ix3>()
            .map_err(|e| ModelError::Shape {
                path: session.path.clone(),
                reason: e.to_string(),
            })
    }
}

/// The sinc filterbank `[chunks, 80, frames]` of equally long chunks, one
/// filterbank pass per run of chunks that each continue the one before
/// (same audio where they overlap, a whole number of filter strides on).
fn shared_filterbanks(
    session: &SharedSession,
    chunks: &[(usize, &[f32])],
    filtered_samples: &AtomicU64,
) -> Result<Array3<f32>, ModelError> {
    let fail = |e: ort::Error| {
        ModelError::Inference(format!("sinc filterbank ({}): {e}", session.path.display()))
    };
    let len = chunks.first().map_or(0, |(_, c)| c.len());
    let frames = len.saturating_sub(SINC_TAPS) / SINC_STRIDE + 1;
    let mut out: Option<Array3<f32>> = None;
    let mut first = 0;
    while first < chunks.len() {
        // The run: chunks[first..end], and the audio they span.
        let mut audio = chunks[first].1.to_vec();
        let mut end = first + 1;
        while let Some(&(start, chunk)) = chunks.get(end) {
            let (previous_start, previous) = chunks[end - 1];
            let advance = start.wrapping_sub(previous_start);
            let continues = start > previous_start
                && advance < len
                && (start - chunks[first].0) % SINC_STRIDE == 0
                && chunk[..len - advance] == previous[advance..];
            if !continues {
                break;
            }
            audio.extend_from_slice(&chunk[len - advance..]);
            end += 1;
        }
        filtered_samples.fetch_add(audio.len() as u64, Ordering::Relaxed);
        let input = ndarray::ArrayView3::from_shape((1, 1, audio.len()), &audio[..])
            .map_err(|e| ModelError::Inference(e.to_string()))?;
        let tensor = TensorRef::from_array_view(input).map_err(fail)?;
        let mut guard = session.lock();
        let outputs = guard.run(ort::inputs![tensor]).map_err(fail)?;
        let bank = outputs[0].try_extract_array::<f32>().map_err(fail)?;
        let bank = bank
            .into_dimensionality::<ndarray::Ix3>()
            .map_err(|e| ModelError::Shape {
                path: session.path.clone(),
                reason: format!("sinc filterbank must output [1, filters, frames]: {e}"),
            })?;
        let out = out.get_or_insert_with(|| Array3::zeros((chunks.len(), bank.shape()[1], frames)));
        for (i, &(start, _)) in chunks.iter().enumerate().take(end).skip(first) {
            let offset = (start - chunks[first].0) / SINC_STRIDE;
            if bank.shape()[1] != out.shape()[1] || bank.shape()[2] < offset + frames {
                return Err(ModelError::Shape {
                    path: session.path.clone(),
                    reason: format!(
                        "sinc filterbank gave {:?} for {} samples",
                        bank.shape(),
                        audio.len()
                    ),
                });
            }
            out.index_axis_mut(Axis(0), i)
                .assign(&bank.slice(s![0, .., offset..offset + frames]));
        }
        first = end;
    }
    Ok(out.unwrap_or_else(|| Array3::zeros((0, 0, frames))))
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
