//! Speakers VBx folds away on their return. A speaker absent from the
//! horizon who speaks again is recognised chunk by chunk (their model
//! rests on minutes of speech), but VBx, seeing only their first seconds in
//! the horizon, may fold those into a present speaker's cluster; the next
//! re-clustering, with more of their speech, separates them again, and the
//! listener sees a label come and go. The registry's longer memory settles
//! it: such members stay apart when their voice is closer to their own
//! label's long-term model than to the rest of the cluster.
//!
//! A new speaker fares the same: their first seconds, guessed a tentative
//! speaker of their own, are folded into a present speaker's cluster until
//! they have enough embeddings, and the live edge (labelled from the folded
//! cluster's voice) gets the wrong label. With no long-term model yet, a
//! guess's members stay apart when their voice and the rest of the cluster
//! score as two speakers.

use std::collections::BTreeMap;

use ndarray::{Array2, ArrayView2, Axis};

use super::Online;
use crate::engine::config::LOCAL_SPEAKERS;
use crate::engine::registry::{accumulate, HorizonSums, Model};

impl Online {
    /// The labels the kept chunks carry (sorted) and, per cluster of
    /// `hard`, the active frames it shares with each.
    pub(super) fn label_overlap(
        &self,
        hard: ArrayView2<i32>,
        clusters: usize,
    ) -> (Vec<usize>, Array2<f64>) {
        let previous = self.labels_where(|_| true);
        let mut overlap = Array2::<f64>::zeros((clusters, previous.len()));
        for (c, k) in self.kept.iter().enumerate() {
            for s in 0..LOCAL_SPEAKERS {
                let (Ok(h), Ok(l)) = (usize::try_from(hard[[c, s]]), usize::try_from(k.labels[s]))
                else {
                    continue;
                };
                let frames = k
                    .analysis
                    .activity
                    .index_axis(Axis(1), s)
                    .iter()
                    .filter(|&&v| v > 0.5)
                    .count();
                let j = previous.binary_search(&l).unwrap_or(0);
                overlap[[h, j]] += frames as f64;
            }
        }
        (previous, overlap)
    }

    /// `hard` with the members of each cluster that belong to an absent
    /// speaker moved to a cluster of their own, and the new cluster count.
    /// Candidates: a cluster's (unsettled) members whose label is neither
    /// its main label nor any other cluster's, and has a long-term model or
    /// is a guess not yet confirmed.
    pub(super) fn keep_returning_speakers(
        &self,
        hard: ArrayView2<i32>,
        clusters: usize,
        previous: &[usize],
        overlap: &Array2<f64>,
    ) -> (Array2<i32>, usize) {
        let mut refined = hard.to_owned();
        let main: Vec<Option<usize>> = (0..clusters)
            .map(|h| {
                (0..previous.len())
                    .filter(|&j| overlap[[h, j]] > 0.0)
                    .max_by(|&a, &b| overlap[[h, a]].total_cmp(&overlap[[h, b]]))
                    .map(|j| previous[j])
            })
            .collect();
        // Archived models only: the horizon's own frames are what is judged.
        let models: BTreeMap<usize, Model> = self
            .registry
            .models(&HorizonSums::new())
            .into_iter()
            .map(|m| (m.id, m))
            .collect();
        let guesses = self.registry.guessed_ids();
        let mut groups: BTreeMap<(usize, usize), Vec<(usize, usize)>> = BTreeMap::new();
        for (c, k) in self.kept.iter().enumerate().filter(|(_, k)| !k.settled) {
            for s in 0..LOCAL_SPEAKERS {
                let (Ok(h), Ok(label)) =
                    (usize::try_from(hard[[c, s]]), usize::try_from(k.labels[s]))
                else {
                    continue;
                };
                let absent = !main.contains(&Some(label));
                if absent && (models.contains_key(&label) || guesses.contains(&label)) {
                    groups.entry((h, label)).or_default().push((c, s));
                }
            }
        }
        // One new cluster per label, however many clusters it is taken from.
        let mut moved: BTreeMap<usize, i32> = BTreeMap::new();
        for ((h, label), members) in groups {
            let apart = match models.get(&label) {
                Some(model) => self.closer_to_model(hard, h, &members, &model.mean, model.weight),
                None => self.unlike_the_rest(hard, h, &members),
            };
            if apart {
                let next = (clusters + moved.len()) as i32;
                let to = *moved.entry(label).or_insert(next);
                for (c, s) in members {
                    refined[[c, s]] = to;
                }
            }
        }
        (refined, clusters + moved.len())
    }

    /// Whether the clean `members` of cluster `h` sound like another
    /// speaker than the cluster's other clean members.
    fn unlike_the_rest(&self, hard: ArrayView2<i32>, h: usize, members: &[(usize, usize)]) -> bool {
        let Some(((group, n), (rest, m))) = self.split_voices(hard, h, members) else {
            return false;
        };
        self.voice.score(&group, n, &rest, m) < self.voice.returning_bar()
    }

    /// Whether the clean `members` of cluster `h` sound more like the model
    /// (`mean` of `weight`) than like the cluster's other clean members,
    /// and like the model at all.
    fn closer_to_model(
        &self,
        hard: ArrayView2<i32>,
        h: usize,
        members: &[(usize, usize)],
        mean: &[f64],
        weight: f64,
    ) -> bool {
        let Some(((voice, n), (rest, m))) = self.split_voices(hard, h, members) else {
            return false;
        };
        let to_model = self.voice.score(&voice, n, mean, weight);
        let to_rest = self.voice.score(&voice, n, &rest, m);
        to_model >= self.voice.returning_bar() && to_model > to_rest
    }

    /// Mean voice features (and count) of the clean `members` of cluster
    /// `h` and of its other clean members; `None` if either has none.
    #[allow(clippy::type_complexity)]
    fn split_voices(
        &self,
        hard: ArrayView2<i32>,
        h: usize,
        members: &[(usize, usize)],
    ) -> Option<((Vec<f64>, f64), (Vec<f64>, f64))> {
        let (mut group, mut n) = (Vec::new(), 0.0);
        let (mut rest, mut m) = (Vec::new(), 0.0);
        for (c, k) in self.kept.iter().enumerate() {
            for s in (0..LOCAL_SPEAKERS).filter(|&s| k.clean[s] && hard[[c, s]] == h as i32) {
                let (sum, count) = if members.contains(&(c, s)) {
                    (&mut group, &mut n)
                } else {
                    (&mut rest, &mut m)
                };
                accumulate(sum, count, k.voice.row(s).iter(), 1.0, 1.0);
            }
        }
        if n < 1.0 || m < 1.0 {
            return None;
        }
        let average = |v: &[f64], w: f64| v.iter().map(|x| x / w).collect::<Vec<_>>();
        Some(((average(&group, n), n), (average(&rest, m), m)))
    }
}
