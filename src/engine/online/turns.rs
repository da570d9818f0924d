//! Turns out of the kept chunks' labels, and the splicing of turns where
//! the final part, earlier computations and new ones meet.

use ndarray::Array2;

use super::{fail, Online};
use crate::engine::clustering::assign::NO_SPEAKER;
use crate::engine::config::LOCAL_SPEAKERS;
use crate::engine::frontend::chunks::binarized;
use crate::engine::output::count::{speaker_count, FrameGrid};
use crate::engine::output::reconstruct::{reconstruct, sort_turns, turns, Turn};
use crate::models::ModelError;

impl Online {
    /// Turns of kept chunks `from..` for frames in `[clip_from, until)`.
    /// Where the speaker count exceeds the labelled speakers, pyannote pads
    /// extra speakers; `pad` keeps them (as new labels), else they are dropped.
    pub(super) fn turns_from(
        &mut self,
        from: usize,
        clip_from: f64,
        until: f64,
        pad: bool,
    ) -> Result<Vec<Turn>, ModelError> {
        let Some(first) = self.kept.get(from) else {
            return Ok(Vec::new());
        };
        let offset = first.analysis.index as f64 * self.step;
        let chunks = self.kept.range(from..);
        let mut ids: Vec<i32> = chunks
            .clone()
            .flat_map(|k| k.shown)
            .filter(|&l| l >= 0)
            .collect();
        let rank = |id: i32| {
            (
                self.cluster_order
                    .iter()
                    .position(|&o| o as i32 == id)
                    .unwrap_or(usize::MAX),
                id,
            )
        };
        ids.sort_unstable_by_key(|&id| rank(id));
        ids.dedup();
        let hard = Array2::from_shape_fn((chunks.len(), LOCAL_SPEAKERS), |(c, s)| {
            let l = self.kept[from + c].shown[s];
            ids.iter()
                .position(|&i| i == l)
                .map_or(NO_SPEAKER, |i| i as i32)
        });
        let bin = binarized(chunks.map(|k| &k.analysis));
        let count = speaker_count(bin.view(), self.step).map_err(|e| fail("speaker count", &e))?;
        let discrete = reconstruct(bin.view(), hard.view(), &count, self.step)
            .map_err(|e| fail("reconstruction", &e))?;
        let mut label: Vec<Option<usize>> = ids.iter().map(|&i| Some(i as usize)).collect();
        label.resize(discrete.ncols().max(ids.len()), None);
        let found = turns(discrete.view(), &FrameGrid::default(), until - offset);
        if pad {
            let now = until;
            for t in &found {
                if label[t.speaker].is_none() {
                    label[t.speaker] = Some(self.registry.new_speaker(now));
                }
            }
        }
        Ok(found
            .into_iter()
            .filter_map(|t| {
                Some(Turn {
                    speaker: label[t.speaker]?,
                    start: (t.start + offset).max(clip_from),
                    end: t.end + offset,
                })
            })
            .filter(|t| t.end > t.start)
            .collect())
    }
}

/// The parts of `turns` before `t`.
pub(super) fn cut_before(turns: &[Turn], t: f64) -> Vec<Turn> {
    turns
        .iter()
        .filter(|x| x.start < t)
        .map(|x| Turn {
            end: x.end.min(t),
            ..*x
        })
        .filter(|x| x.end > x.start)
        .collect()
}

/// The parts of `turns` from `t` on.
pub(super) fn cut_from(turns: &[Turn], t: f64) -> Vec<Turn> {
    turns
        .iter()
        .filter(|x| x.end > t)
        .map(|x| Turn {
            start: x.start.max(t),
            ..*x
        })
        .filter(|x| x.end > x.start)
        .collect()
}

/// Sorted by start; a speaker's turns less than `gap` apart joined into one.
pub(super) fn join(mut turns: Vec<Turn>, gap: f64) -> Vec<Turn> {
    turns.sort_by(|a, b| a.speaker.cmp(&b.speaker).then(a.start.total_cmp(&b.start)));
    let mut out: Vec<Turn> = Vec::with_capacity(turns.len());
    for t in turns {
        match out.last_mut() {
            Some(last) if last.speaker == t.speaker && t.start <= last.end + gap => {
                last.end = last.end.max(t.end)
            }
            _ => out.push(t),
        }
    }
    sort_turns(&mut out);
    out
}
