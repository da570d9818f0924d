//! Naming the clusters of one re-clustering with the registry's labels
//! (the order of the steps is in the registry's module documentation).

use ndarray::Array2;
use pathfinding::prelude::{kuhn_munkres, Matrix};

use super::{HorizonSums, LabelChange, Registry, Voice};

/// What one re-clustering of the horizon found, seen against the labels
/// the horizon carried.
pub struct Reclustering<'a> {
    /// `[cluster][j]`: frames the cluster shares with label `previous[j]`.
    pub overlap: &'a Array2<f64>,
    pub previous: &'a [usize],
    /// `[cluster]`: mean voice features of its clean members, and their count.
    pub voices: &'a [(Vec<f64>, f64)],
    pub voice: &'a Voice,
    /// Per cluster: has a member in a chunk not yet settled. Only such
    /// clusters can relabel anything.
    pub live: &'a [bool],
    /// Labels that settled chunks carry: they live on there.
    pub settled: &'a [usize],
    /// Labels that only chunks guessed since the last re-clustering carry.
    pub guessed: &'a [usize],
}

impl Registry {
    /// A label for each cluster (`usize::MAX` for a cluster of settled
    /// chunks that overlaps no label) and the changes to report.
    /// `horizon`: the embedding sums of the labels in the horizon.
    pub fn match_clusters(
        &mut self,
        r: &Reclustering,
        horizon: &HorizonSums,
        now: f64,
    ) -> (Vec<usize>, Vec<LabelChange>) {
        let Reclustering {
            overlap,
            previous,
            voices,
            voice,
            live,
            settled,
            guessed,
        } = *r;
        let k = voices.len();
        let mut label: Vec<Option<usize>> = vec![None; k];
        // A cluster of settled chunks alone relabels nothing: it keeps the
        // label it overlaps most and takes no part in the matching.
        let mut contested = overlap.clone();
        for c in (0..k).filter(|&c| !live[c]) {
            label[c] = best_column(overlap, c, |_| true).map(|j| previous[j]);
            contested.row_mut(c).fill(0.0);
        }
        // Guesses are few: one list instead of a search of all speakers per question.
        let guesses = self.tentative_ids();
        let tentative: Vec<bool> = previous.iter().map(|id| guesses.contains(id)).collect();
        // 1. Overlap with the labels the horizon carried.
        for (cluster, j) in one_to_one(&contested) {
            label[cluster] = Some(previous[j]);
        }
        // 2. Returning speakers: those absent from the horizon. A cluster
        // whose label only guesses carry may be one of them too: its voice,
        // resting on all its speech, weighs the guess against every absent
        // speaker's model (without the guessed chunks in it). A cluster
        // the voice matches to nobody keeps what it has.
        let open: Vec<usize> = (0..k)
            .filter(|&c| live[c] && label[c].is_none_or(|id| guessed.contains(&id)))
            .collect();
        let held = |id: usize| (0..k).any(|c| label[c] == Some(id) && !open.contains(&c));
        let mut proven = horizon.clone();
        proven.retain(|id, _| !guessed.contains(id));
        let absent: Vec<super::Model> = self
            .models(&proven)
            .into_iter()
            .filter(|m| !held(m.id) && !guesses.contains(&m.id))
            .collect();
        if !absent.is_empty() && !open.is_empty() {
            let bar = voice.returning_bar();
            let sim = Array2::from_shape_fn((open.len(), absent.len()), |(i, j)| {
                let (mean, n) = &voices[open[i]];
                let s = voice.score(mean, *n, &absent[j].mean, absent[j].weight);
                // Kuhn–Munkres takes positive weights: the margin over the bar.
                if s >= bar {
                    s - bar + 1e-3
                } else {
                    0.0
                }
            });
            let matched = one_to_one(&sim);
            let taken: Vec<usize> = matched.iter().map(|&(_, j)| absent[j].id).collect();
            for &c in &open {
                // A guess another cluster's voice took back is no label here.
                if label[c].is_some_and(|id| taken.contains(&id)) {
                    label[c] = None;
                }
            }
            for (i, j) in matched {
                label[open[i]] = Some(absent[j].id);
            }
        }
        // 3. New speakers; a cluster cut out of a labelled one is a split.
        let mut changes = Vec::new();
        let mut out = Vec::with_capacity(k);
        for (cluster, l) in label.into_iter().enumerate() {
            let id = match l {
                Some(id) => id,
                None if !live[cluster] => usize::MAX,
                None => {
                    let new = self.new_speaker(now);
                    let from =
                        best_column(overlap, cluster, |j| !tentative[j]).map(|j| previous[j]);
                    if let Some(from) = from {
                        changes.push(LabelChange::Split { from, new });
                    }
                    new
                }
            };
            if id != usize::MAX {
                self.seen(id, now);
                if let Some(s) = self.get_mut(id) {
                    s.tentative = false;
                }
            }
            out.push(id);
        }
        // Previous labels that lost all their frames to another label.
        for (j, &from) in previous.iter().enumerate() {
            // A label on settled chunks lives on there: nothing was merged.
            if out.contains(&from) || settled.contains(&from) {
                continue;
            }
            let into = (0..k)
                .filter(|&c| overlap[[c, j]] > 0.0 && out[c] != usize::MAX)
                .max_by(|&a, &b| overlap[[a, j]].total_cmp(&overlap[[b, j]]));
            if let Some(c) = into {
                if guessed.contains(&from) && !tentative[j] {
                    // A known speaker guessed wrongly: the guess is
                    // withdrawn, its voice model untouched.
                } else if tentative[j] {
                    // A guess that no re-clustering confirmed: not worth a
                    // message, nor a place among the speakers.
                    self.retire(from, out[c]);
                } else {
                    changes.push(LabelChange::Merged { from, into: out[c] });
                    self.park(from, horizon);
                }
            }
        }
        (out, changes)
    }
}

/// Max-total one-to-one pairs (row, column) with a positive score.
pub(super) fn one_to_one(scores: &Array2<f64>) -> Vec<(usize, usize)> {
    let (rows, cols) = scores.dim();
    if rows == 0 || cols == 0 {
        return Vec::new();
    }
    let max = scores
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let scale = if max > 0.0 { 1e9 / max } else { 1.0 };
    let w = |r: usize, c: usize| {
        let v = scores[[r, c]];
        if v.is_finite() && v > 0.0 {
            (v * scale).round() as i64
        } else {
            0
        }
    };
    let pairs: Vec<(usize, usize)> = if rows <= cols {
        kuhn_munkres(&Matrix::from_fn(rows, cols, |(r, c)| w(r, c)))
            .1
            .into_iter()
            .enumerate()
            .collect()
    } else {
        let (_, by_col) = kuhn_munkres(&Matrix::from_fn(cols, rows, |(c, r)| w(r, c)));
        by_col
            .into_iter()
            .enumerate()
            .map(|(c, r)| (r, c))
            .collect()
    };
    pairs.into_iter().filter(|&(r, c)| w(r, c) > 0).collect()
}

/// The column among `keep` with the highest positive score in `row`.
fn best_column(scores: &Array2<f64>, row: usize, keep: impl Fn(usize) -> bool) -> Option<usize> {
    (0..scores.ncols())
        .filter(|&c| keep(c) && scores[[row, c]] > 0.0)
        .max_by(|&a, &b| scores[[row, a]].total_cmp(&scores[[row, b]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Cluster voices for the cosine space: each centroid as one embedding.
    fn voices(centroids: &Array2<f32>) -> Vec<(Vec<f64>, f64)> {
        centroids
            .rows()
            .into_iter()
            .map(|r| (r.iter().map(|&v| v as f64).collect(), 1.0))
            .collect()
    }

    fn all_live(
        r: &mut Registry,
        overlap: &Array2<f64>,
        previous: &[usize],
        centroids: &Array2<f32>,
        horizon: &HorizonSums,
    ) -> (Vec<usize>, Vec<LabelChange>) {
        let live = vec![true; centroids.nrows()];
        let voices = voices(centroids);
        let clusters = Reclustering {
            overlap,
            previous,
            voices: &voices,
            voice: &Voice::Cosine,
            live: &live,
            settled: &[],
            guessed: &[],
        };
        r.match_clusters(&clusters, horizon, 1.0)
    }

    #[test]
    fn clusters_keep_the_labels_they_overlap() {
        let mut r = Registry::default();
        let (a, b) = (r.new_speaker(0.0), r.new_speaker(0.0));
        // The clustering swapped its numbering: cluster 0 is speaker b.
        let overlap = array![[0.0, 90.0], [80.0, 2.0]];
        let centroids = array![[1.0f32, 0.0], [0.0, 1.0]];
        let (labels, changes) =
            all_live(&mut r, &overlap, &[a, b], &centroids, &HorizonSums::new());
        assert_eq!(labels, vec![b, a]);
        assert!(changes.is_empty());
    }

    #[test]
    fn merges_splits_and_returning_speakers_are_named() {
        let mut r = Registry::default();
        let (a, b, gone) = (r.new_speaker(0.0), r.new_speaker(0.0), r.new_speaker(0.0));
        r.archive(gone, array![0.0, 0.0, 1.0].view());
        // Cluster 0 holds all of a and b (merge); cluster 1 is cut out of
        // a (split); cluster 2 sounds like the absent speaker.
        let overlap = array![[50.0, 40.0], [10.0, 0.0], [0.0, 0.0]];
        let centroids = array![[1.0f32, 0.0, 0.0], [0.0, 1.0, 0.0], [0.1, 0.0, 1.0]];
        let (labels, changes) =
            all_live(&mut r, &overlap, &[a, b], &centroids, &HorizonSums::new());
        assert_eq!(labels[0], a);
        assert_eq!(labels[2], gone);
        let new = labels[1];
        assert!(new > gone);
        assert!(changes.contains(&LabelChange::Split { from: a, new }));
        assert!(changes.contains(&LabelChange::Merged { from: b, into: a }));
        assert_eq!(
            r.models(&HorizonSums::new()).len(),
            1,
            "only the archived speaker has a model"
        );
    }

    #[test]
    fn a_merged_speaker_comes_back_under_its_own_label() {
        let mut r = Registry::default();
        let (a, b) = (r.new_speaker(0.0), r.new_speaker(0.0));
        let mut horizon = HorizonSums::new();
        horizon.insert(a, (vec![1.0, 0.0], 1.0));
        horizon.insert(b, (vec![0.0, 2.0], 2.0));
        // One cluster takes all of a and b: b is merged into a.
        let (labels, changes) = all_live(
            &mut r,
            &array![[50.0, 40.0]],
            &[a, b],
            &array![[1.0f32, 0.3]],
            &horizon,
        );
        assert_eq!(labels, vec![a]);
        assert_eq!(changes, vec![LabelChange::Merged { from: b, into: a }]);
        // Later, a cluster without overlap sounds like b.
        horizon.clear();
        horizon.insert(a, (vec![1.0, 0.0], 1.0));
        let (labels, _) = all_live(
            &mut r,
            &array![[60.0], [0.0]],
            &[a],
            &array![[1.0f32, 0.0], [0.1, 1.0]],
            &horizon,
        );
        assert_eq!(labels, vec![a, b]);
    }

    #[test]
    fn unconfirmed_guesses_and_settled_clusters_report_nothing() {
        let mut r = Registry::default();
        let a = r.new_speaker(0.0);
        let guess = r.new_tentative_speaker(0.0);
        // The guess's frames joined a's cluster; cluster 1 holds settled
        // chunks only, which were a's.
        let overlap = array![[80.0, 10.0], [5.0, 0.0]];
        let live = [true, false];
        let centroids = array![[1.0f32, 0.0], [0.0, 1.0]];
        let clusters = Reclustering {
            overlap: &overlap,
            previous: &[a, guess],
            voices: &voices(&centroids),
            voice: &Voice::Cosine,
            live: &live,
            settled: &[a],
            guessed: &[guess],
        };
        let (labels, changes) = r.match_clusters(&clusters, &HorizonSums::new(), 1.0);
        assert_eq!(labels, vec![a, a]);
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(r.labels_used(), 2, "no new label for the settled cluster");
        assert!(r.tentative_ids().is_empty(), "the guess left the registry");
    }

    #[test]
    fn a_wrong_guess_of_a_known_speaker_is_withdrawn_by_voice() {
        let mut r = Registry::default();
        let (a, b, c) = (r.new_speaker(0.0), r.new_speaker(0.0), r.new_speaker(0.0));
        r.archive(b, array![1.0, 0.0, 0.0].view());
        r.archive(c, array![0.0, 1.0, 0.0].view());
        // Only guesses carry b: chunks of a (cluster 0) and of someone who
        // sounds like the absent c (cluster 1).
        let mut horizon = HorizonSums::new();
        horizon.insert(a, (vec![0.0, 0.0, 5.0], 5.0));
        horizon.insert(b, (vec![0.0, 3.0, 0.0], 4.0));
        let overlap = array![[90.0, 10.0], [0.0, 40.0]];
        let centroids = array![[0.0f32, 0.0, 1.0], [0.1, 1.0, 0.0]];
        let live = [true, true];
        let clusters = Reclustering {
            overlap: &overlap,
            previous: &[a, b],
            voices: &voices(&centroids),
            voice: &Voice::Cosine,
            live: &live,
            settled: &[],
            guessed: &[b],
        };
        let (labels, changes) = r.match_clusters(&clusters, &horizon, 1.0);
        assert_eq!(labels, vec![a, c]);
        assert!(
            changes.is_empty(),
            "a withdrawn guess is no merge: {changes:?}"
        );
        let model_b = r
            .models(&HorizonSums::new())
            .into_iter()
            .find(|m| m.id == b);
        assert_eq!(model_b.map(|m| m.mean), Some(vec![1.0, 0.0, 0.0]));
    }
}
