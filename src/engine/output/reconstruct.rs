//! From clustered chunks to a frame-level diarization and speaker turns
//! (docs/design.md §8): pyannote's `SpeakerDiarization.reconstruct`,
//! `to_diarization` and `to_annotation` (`Binarize`).

use ndarray::{Array2, ArrayView2, ArrayView3};

use crate::engine::output::count::{chunk_start_frame, num_global_frames, FrameGrid, GridError};

/// One speaker turn in seconds; `speaker` indexes the discrete diarization
/// columns (= cluster index).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Turn {
    pub speaker: usize,
    pub start: f64,
    pub end: f64,
}

/// Discrete diarization `[frames, speakers]` (0/1).
///
/// For each chunk and cluster, the activity is the max over the local
/// speakers assigned to it; these are summed over the chunks covering a
/// global frame (no averaging), and per frame the `count[t]` clusters with
/// the highest sums are kept (ties: lower index first, which is what
/// pyannote's `argsort` did on the reference). Columns =
/// `max(max(hard) + 1, max(count))`: extra all-zero speakers are padded in
/// when the count exceeds the number of clusters, like pyannote.
pub fn reconstruct(
    binarized: ArrayView3<f32>,
    hard_clusters: ArrayView2<i32>,
    count: &[u8],
    chunk_step_s: f64,
) -> Result<Array2<u8>, GridError> {
    let (chunks, _, local) = binarized.dim();
    if hard_clusters.dim() != (chunks, local) {
        return Err(GridError::Shape(format!(
            "hard clusters {:?} vs segmentation {:?}",
            hard_clusters.dim(),
            binarized.dim()
        )));
    }
    let frames = num_global_frames(chunks, chunk_step_s)?;
    if count.len() != frames {
        return Err(GridError::Shape(format!(
            "count has {} frames, expected {frames}",
            count.len()
        )));
    }
    let clusters = hard_clusters
        .iter()
        .copied()
        .max()
        .map_or(0, |m| (m + 1).max(0) as usize);
    let cols = clusters.max(count.iter().copied().max().unwrap_or(0) as usize);
    let mut sums = Array2::<u32>::zeros((frames, cols));
    for c in 0..chunks {
        let start = chunk_start_frame(c, chunk_step_s);
        let seg = binarized.index_axis(ndarray::Axis(0), c);
        for k in 0..clusters {
            let members: Vec<usize> = (0..local)
                .filter(|&s| hard_clusters[[c, s]] == k as i32)
                .collect();
            if members.is_empty() {
                continue;
            }
            for (i, f) in seg.outer_iter().enumerate() {
                let g = start + i;
                if g >= frames {
                    break;
                }
                if members.iter().any(|&s| f[s] > 0.5) {
                    sums[[g, k]] += 1;
                }
            }
        }
    }
    let mut out = Array2::<u8>::zeros((frames, cols));
    let mut order: Vec<usize> = Vec::with_capacity(cols);
    for t in 0..frames {
        order.clear();
        order.extend(0..cols);
        // Stable sort: ties keep the lower speaker index first.
        order.sort_by(|&a, &b| sums[[t, b]].cmp(&sums[[t, a]]));
        for &k in order.iter().take(count[t] as usize) {
            out[[t, k]] = 1;
        }
    }
    Ok(out)
}

/// Turns from a discrete diarization, pyannote `Binarize` style: a turn
/// runs from the middle of its first active frame to the middle of the
/// first inactive one (or of the last frame), which reproduces pyannote's
/// RTTM exactly on the reference sample. Clipped to `[0, duration_s]`,
/// sorted by (start, end, speaker).
pub fn turns(discrete: ArrayView2<u8>, grid: &FrameGrid, duration_s: f64) -> Vec<Turn> {
    let (frames, speakers) = discrete.dim();
    let mut out = Vec::new();
    if frames == 0 {
        return out;
    }
    for k in 0..speakers {
        let mut start = (discrete[[0, k]] > 0).then(|| grid.middle(0));
        for t in 1..frames {
            let on = discrete[[t, k]] > 0;
            match (start, on) {
                (Some(s), false) => {
                    out.push(Turn {
                        speaker: k,
                        start: s,
                        end: grid.middle(t),
                    });
                    start = None;
                }
                (None, true) => start = Some(grid.middle(t)),
                _ => {}
            }
        }
        if let Some(s) = start {
            out.push(Turn {
                speaker: k,
                start: s,
                end: grid.middle(frames - 1),
            });
        }
    }
    let limit = if duration_s.is_finite() {
        duration_s
    } else {
        f64::INFINITY
    };
    let mut out: Vec<Turn> = out
        .into_iter()
        .map(|t| Turn {
            start: t.start.max(0.0),
            end: t.end.min(limit),
            ..t
        })
        .filter(|t| t.end > t.start)
        .collect();
    sort_turns(&mut out);
    out
}

/// The order of turns everywhere: by start, end, then speaker.
pub fn sort_turns(turns: &mut [Turn]) {
    turns.sort_by(|a, b| {
        a.start
            .total_cmp(&b.start)
            .then(a.end.total_cmp(&b.end))
            .then(a.speaker.cmp(&b.speaker))
    });
}
