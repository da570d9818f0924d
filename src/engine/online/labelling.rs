//! Who each kept chunk's local speakers are: the incremental guess for a
//! new chunk, the horizon's embedding sums, and the re-clustering that
//! names the clusters with the registry's labels.

use ndarray::{Array2, ArrayView2, Axis};

use super::{fail, Kept, Online, SETTLE_SECONDS};
use crate::engine::clustering::assign::{constrained_assignment, NO_SPEAKER};
use crate::engine::clustering::cluster;
use crate::engine::config::{CHUNK_SECONDS, FRAME_STEP, LOCAL_SPEAKERS};
use crate::engine::frontend::chunks::{binarized, embeddings, ChunkAnalysis};
use crate::engine::loaded::LoadedModels;
use crate::engine::profile::{self, Stage};
use crate::engine::registry::{accumulate, LabelChange, Reclustering};
use crate::models::ModelError;

/// Share of an earlier local speaker's speech that must be a newer chunk's
/// local speaker's for the two to be one voice.
const STITCH_SHARE: f64 = 0.7;

impl Online {
    /// The speaker each active local speaker of `kept` most resembles.
    pub(super) fn label_incrementally(&mut self, kept: &Kept) -> [i32; LOCAL_SPEAKERS] {
        let mut labels = [NO_SPEAKER; LOCAL_SPEAKERS];
        let e = &kept.analysis.embeddings;
        let active = active_speakers(&kept.analysis);
        let usable = |s: usize| active[s] && e.row(s).iter().all(|v| v.is_finite());
        let models = self.registry.models(&self.sums);
        let features = &kept.voice;
        let scores = Array2::from_shape_fn((LOCAL_SPEAKERS, models.len()), |(s, j)| match features
            .row(s)
            .as_slice()
        {
            Some(f) if usable(s) => self.voice.score(f, 1.0, &models[j].mean, models[j].weight),
            _ => f64::NAN,
        });
        let assigned = constrained_assignment(scores.view());
        let now = self.chunk_end(kept.analysis.index);
        for s in (0..LOCAL_SPEAKERS).filter(|&s| usable(s)) {
            let best = usize::try_from(assigned[s])
                .ok()
                .map(|j| (models[j].id, scores[[s, j]]));
            labels[s] = match best {
                Some((id, sim)) if sim >= self.voice.new_speaker_bar() || !kept.clean[s] => {
                    id as i32
                }
                _ if kept.clean[s] => self.registry.new_tentative_speaker(now) as i32,
                _ => NO_SPEAKER,
            };
            if labels[s] >= 0 {
                self.registry.seen(labels[s] as usize, now);
            }
        }
        labels
    }

    /// Shows the labels of the newest kept chunk's clean local speakers on
    /// earlier chunks' local speakers who are, frame for frame, the same
    /// voice: a speaker's first seconds sit at the end of earlier chunks,
    /// too short to tell who they are (or enough to start a second,
    /// tentative label for them), and the newer chunk heard more of them.
    /// Only what is shown changes: what re-clustering and the speakers'
    /// models learn from stays the chunk's own guess, so the final result
    /// is the same with or without it.
    /// Returns where the earliest chunk whose labels changed starts (s).
    pub(super) fn stitch_back(&mut self) -> Option<f64> {
        let newest = self.kept.back()?;
        let (index, labels, clean) = (newest.analysis.index, newest.shown, newest.clean);
        let activity = newest.analysis.activity.clone();
        let guessed = self.registry.guessed_ids();
        let is_guess = |label: i32| usize::try_from(label).is_ok_and(|l| guessed.contains(&l));
        let mut earliest = None;
        for earlier in self.kept.iter_mut().rev().skip(1) {
            let apart = index.saturating_sub(earlier.analysis.index) as f64 * self.step;
            if apart >= CHUNK_SECONDS {
                break;
            }
            if earlier.settled || earlier.analysis.is_skipped() {
                continue;
            }
            let offset = (apart / FRAME_STEP).round() as usize;
            for s in (0..LOCAL_SPEAKERS).filter(|&s| clean[s] && labels[s] >= 0) {
                let Some(t) = same_voice(&earlier.analysis.activity, &activity, offset, s) else {
                    continue;
                };
                // A clean speaker's own voice outweighs the newer chunk's
                // unless its label is itself a tentative guess.
                if (earlier.clean[t] && !is_guess(earlier.shown[t]))
                    || earlier.shown.contains(&labels[s])
                {
                    continue;
                }
                earlier.shown[t] = labels[s];
                earliest = Some(earlier.analysis.index as f64 * self.step);
            }
        }
        earliest
    }

    /// Adds (or with `sign` −1 removes) a chunk's clean embeddings to the
    /// horizon sums of the speakers they are labelled with.
    pub(super) fn contribute(&mut self, kept: &Kept, sign: f64) {
        for s in 0..LOCAL_SPEAKERS {
            let (Ok(id), true) = (usize::try_from(kept.labels[s]), kept.clean[s]) else {
                continue;
            };
            let (sum, weight) = self.sums.entry(id).or_default();
            accumulate(sum, weight, kept.voice.row(s).iter(), 1.0, sign);
        }
        self.sums.retain(|_, (_, w)| *w > 0.5);
    }

    /// Re-clusters the kept chunks and names the clusters. With
    /// `returning`, members of a cluster who sound like an absent speaker
    /// or an unconfirmed guess are kept apart (`keep_returning_speakers`).
    pub(super) fn recluster(
        &mut self,
        models: &LoadedModels,
        returning: bool,
    ) -> Result<Vec<LabelChange>, ModelError> {
        if self.kept.is_empty() || self.dimension == 0 {
            return Ok(Vec::new());
        }
        let bin = binarized(self.kept.iter().map(|k| &k.analysis));
        let emb = embeddings(self.kept.iter().map(|k| &k.analysis), self.dimension);
        // Skipped chunks (a lagging live stream) leave the others further apart.
        let analysed = self
            .kept
            .iter()
            .filter(|k| !k.analysis.is_skipped())
            .count();
        let step = self.step * self.kept.len() as f64 / analysed.max(1) as f64;
        let started = profile::start();
        let result = cluster(
            emb.view(),
            bin.view(),
            models.plda.as_deref(),
            &self.clustering.for_step(step),
        )
        .map_err(|e| fail("clustering", &e))?;
        profile::record(Stage::Clustering, started);
        let (previous, vbx_overlap) =
            self.label_overlap(result.hard_clusters.view(), result.num_clusters());
        let (hard, clusters) = if returning {
            self.keep_returning_speakers(
                result.hard_clusters.view(),
                result.num_clusters(),
                &previous,
                &vbx_overlap,
            )
        } else {
            (result.hard_clusters.clone(), result.num_clusters())
        };
        // Nothing moved: the overlap VBx's clusters gave is the one to match.
        let overlap = if clusters == result.num_clusters() {
            vbx_overlap
        } else {
            self.label_overlap(hard.view(), clusters).1
        };
        let now = self
            .kept
            .back()
            .map_or(0.0, |k| self.chunk_end(k.analysis.index));
        let mut live = vec![false; clusters];
        for (c, _) in self.kept.iter().enumerate().filter(|(_, k)| !k.settled) {
            for s in 0..LOCAL_SPEAKERS {
                if let Ok(h) = usize::try_from(hard[[c, s]]) {
                    live[h] = true;
                }
            }
        }
        let settled = self.labels_where(|k| k.settled);
        // Labels that only incremental guesses carry: the re-clustering's
        // voice, resting on more speech, decides whether they were right.
        let confirmed = self.labels_where(|k| k.confirmed);
        let guessed: Vec<usize> = previous
            .iter()
            .copied()
            .filter(|l| !confirmed.contains(l))
            .collect();
        let voices = self.cluster_voices(hard.view(), clusters);
        let clusters = Reclustering {
            guessed: &guessed,
            overlap: &overlap,
            previous: &previous,
            voices: &voices,
            voice: &self.voice,
            live: &live,
            settled: &settled,
        };
        let (ids, changes) = self.registry.match_clusters(&clusters, &self.sums, now);
        self.cluster_order = ids.clone();
        for (c, k) in self.kept.iter_mut().enumerate().filter(|(_, k)| !k.settled) {
            for s in 0..LOCAL_SPEAKERS {
                k.labels[s] = usize::try_from(hard[[c, s]])
                    .ok()
                    .and_then(|h| i32::try_from(ids[h]).ok())
                    .unwrap_or(NO_SPEAKER);
            }
        }
        self.kept.iter_mut().for_each(|k| {
            k.confirmed = true;
            k.shown = k.labels;
        });
        self.sums.clear();
        let kept = std::mem::take(&mut self.kept);
        kept.iter().for_each(|k| self.contribute(k, 1.0));
        self.kept = kept;
        for i in 0..self.kept.len() {
            if self.chunk_end(self.kept[i].analysis.index) < now - SETTLE_SECONDS {
                self.kept[i].settled = true;
            }
        }
        Ok(changes)
    }
}

impl Online {
    /// The labels (sorted, once each) that kept chunks chosen by `keep` carry.
    pub(super) fn labels_where(&self, keep: impl Fn(&Kept) -> bool) -> Vec<usize> {
        let mut labels: Vec<usize> = self
            .kept
            .iter()
            .filter(|k| keep(k))
            .flat_map(|k| k.labels)
            .filter_map(|l| usize::try_from(l).ok())
            .collect();
        labels.sort_unstable();
        labels.dedup();
        labels
    }

    /// Mean voice features and count of each cluster's clean members.
    fn cluster_voices(&self, hard: ArrayView2<i32>, clusters: usize) -> Vec<(Vec<f64>, f64)> {
        let mut voices = vec![(Vec::new(), 0.0); clusters];
        for (c, k) in self.kept.iter().enumerate() {
            for s in (0..LOCAL_SPEAKERS).filter(|&s| k.clean[s]) {
                if let Ok(h) = usize::try_from(hard[[c, s]]) {
                    let (sum, n) = &mut voices[h];
                    accumulate(sum, n, k.voice.row(s).iter(), 1.0, 1.0);
                }
            }
        }
        for (sum, n) in &mut voices {
            sum.iter_mut().for_each(|v| *v /= n.max(1.0));
        }
        voices
    }
}

fn active_speakers(a: &ChunkAnalysis) -> [bool; LOCAL_SPEAKERS] {
    std::array::from_fn(|s| a.activity.index_axis(Axis(1), s).iter().any(|&v| v > 0.5))
}

/// The local speaker of an earlier chunk whose speech is mostly where
/// local speaker `s` of a chunk starting `offset` frames later speaks.
fn same_voice(
    earlier: &Array2<f32>,
    later: &Array2<f32>,
    offset: usize,
    s: usize,
) -> Option<usize> {
    let frames = earlier.nrows();
    (0..LOCAL_SPEAKERS).find(|&t| {
        let spoken = earlier.column(t).iter().filter(|&&v| v > 0.5).count();
        let shared = (offset..frames)
            .filter(|&f| {
                earlier[[f, t]] > 0.5 && later.get([f - offset, s]).is_some_and(|&v| v > 0.5)
            })
            .count();
        spoken > 0 && shared as f64 >= STITCH_SHARE * spoken as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::FRAMES_PER_CHUNK;

    /// Activity of one chunk with local speaker `s` on over `frames`.
    fn activity(spans: &[(usize, std::ops::Range<usize>)]) -> Array2<f32> {
        let mut a = Array2::zeros((FRAMES_PER_CHUNK, LOCAL_SPEAKERS));
        for (s, frames) in spans {
            frames.clone().for_each(|f| a[[f, *s]] = 1.0);
        }
        a
    }

    #[test]
    fn a_voice_is_followed_into_the_next_chunk_frame_for_frame() {
        // Chunk two starts 59 frames later. Earlier local speaker 2 is the
        // last 60 frames, where the later chunk's local speaker 0 speaks;
        // earlier local speaker 1 ends before the overlap.
        let earlier = activity(&[(1, 0..300), (2, 529..589)]);
        let later = activity(&[(0, 470..589), (1, 0..100)]);
        assert_eq!(same_voice(&earlier, &later, 59, 0), Some(2));
        assert_eq!(same_voice(&earlier, &later, 59, 1), None);
        // Less than STITCH_SHARE of the earlier speaker's speech is shared.
        let longer = activity(&[(2, 300..589)]);
        assert_eq!(same_voice(&longer, &later, 59, 0), None);
    }
}
