//! Global frame grid and per-frame speaker count (docs/design.md §3).
//!
//! Mirrors pyannote's `Inference.aggregate` grid arithmetic so that frame
//! indices line up exactly with pyannote's `speaker_count` and
//! `discrete_diarization` arrays.

use ndarray::ArrayView3;

use crate::engine::config::{CHUNK_SECONDS, FRAME_DURATION, FRAME_STEP};

/// Errors of the grid-based stages (count, reconstruction).
#[derive(Debug, thiserror::Error)]
pub enum GridError {
    #[error("chunk step must be finite and > 0 seconds, got {0}")]
    InvalidStep(f64),
    #[error("shape mismatch: {0}")]
    Shape(String),
}

/// A pyannote `SlidingWindow` of frames: frame i spans
/// `[start + i*step, start + i*step + duration]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameGrid {
    pub start: f64,
    pub step: f64,
    pub duration: f64,
}

impl Default for FrameGrid {
    fn default() -> Self {
        Self {
            start: 0.0,
            step: FRAME_STEP,
            duration: FRAME_DURATION,
        }
    }
}

impl FrameGrid {
    /// pyannote `SlidingWindow.closest_frame`: index of the frame whose
    /// middle is closest to `t` (numpy `rint`, ties to even).
    pub fn closest_frame(&self, t: f64) -> i64 {
        ((t - self.start - 0.5 * self.duration) / self.step).round_ties_even() as i64
    }

    /// Middle of frame `i`, the timestamp pyannote's `Binarize` uses.
    pub fn middle(&self, i: usize) -> f64 {
        let s = self.start + i as f64 * self.step;
        0.5 * (s + (s + self.duration))
    }
}

fn check_step(chunk_step_s: f64) -> Result<(), GridError> {
    if chunk_step_s.is_finite() && chunk_step_s > 0.0 {
        Ok(())
    } else {
        Err(GridError::InvalidStep(chunk_step_s))
    }
}

/// First global frame of chunk `chunk` (chunk c starts at `c * step` s).
/// Same expression as pyannote (`closest_frame(start + duration/2)`) so
/// rounding matches even where `start / step` is close to a half-integer.
pub fn chunk_start_frame(chunk: usize, chunk_step_s: f64) -> usize {
    let grid = FrameGrid::default();
    let start = chunk as f64 * chunk_step_s;
    grid.closest_frame(start + 0.5 * grid.duration).max(0) as usize
}

/// Number of global frames pyannote's `Inference.aggregate` allocates for
/// `num_chunks` chunks: `closest_frame(last_start + 10 + duration/2) + 1`.
pub fn num_global_frames(num_chunks: usize, chunk_step_s: f64) -> Result<usize, GridError> {
    check_step(chunk_step_s)?;
    if num_chunks == 0 {
        return Ok(0);
    }
    let grid = FrameGrid::default();
    let last_start = (num_chunks - 1) as f64 * chunk_step_s;
    let end = last_start + CHUNK_SECONDS + 0.5 * grid.duration;
    Ok((grid.closest_frame(end) + 1).max(0) as usize)
}

/// Rounds `num / den` to nearest, ties to even, in exact integer
/// arithmetic (pyannote does `np.rint` on a float32 average; ties are the
/// only case where rounding matters and they are exact in both).
fn div_round_half_even(num: u64, den: u64) -> u64 {
    let q = num / den;
    let r2 = 2 * (num % den);
    if r2 > den || (r2 == den && q % 2 == 1) {
        q + 1
    } else {
        q
    }
}

/// Speaker count per global frame: average over the chunks covering the
/// frame of the number of active local speakers (uniform weights, no
/// warm-up), rounded half to even. Frames no chunk covers get 0.
///
/// `binarized` is `[chunks, frames_per_chunk, local_speakers]` with 0/1
/// values (> 0.5 counts as active). A chunk whose first value is NaN was
/// skipped (a live stream falling behind) and covers nothing.
pub fn speaker_count(binarized: ArrayView3<f32>, chunk_step_s: f64) -> Result<Vec<u8>, GridError> {
    let num_chunks = binarized.dim().0;
    let total = num_global_frames(num_chunks, chunk_step_s)?;
    let mut active = vec![0u64; total];
    let mut covering = vec![0u64; total];
    for (c, chunk) in binarized.outer_iter().enumerate() {
        if chunk.first().is_some_and(|v| v.is_nan()) {
            continue;
        }
        let start = chunk_start_frame(c, chunk_step_s);
        for (i, frame) in chunk.outer_iter().enumerate() {
            let Some(g) = start.checked_add(i).filter(|&g| g < total) else {
                break;
            };
            active[g] += frame.iter().filter(|&&v| v > 0.5).count() as u64;
            covering[g] += 1;
        }
    }
    Ok(active
        .iter()
        .zip(&covering)
        .map(|(&a, &n)| {
            if n == 0 {
                0
            } else {
                div_round_half_even(a, n).min(255) as u8
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn sample_grid_size() {
        assert_eq!(num_global_frames(21, 1.0).unwrap(), 1779);
        assert_eq!(chunk_start_frame(1, 1.0), 59);
        assert!(num_global_frames(3, 0.0).is_err());
    }

    #[test]
    fn half_to_even() {
        assert_eq!(div_round_half_even(1, 2), 0);
        assert_eq!(div_round_half_even(3, 2), 2);
        assert_eq!(div_round_half_even(5, 2), 2);
        assert_eq!(div_round_half_even(2, 3), 1);
    }

    #[test]
    fn empty_input() {
        let seg = Array3::<f32>::zeros((0, 589, 3));
        assert!(speaker_count(seg.view(), 1.0).unwrap().is_empty());
    }
}
