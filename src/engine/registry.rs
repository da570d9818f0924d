//! The speakers a stream has met, under labels that stay stable.
//!
//! Each re-clustering of the recent horizon numbers its clusters afresh;
//! the registry maps them onto the speakers it already knows:
//! 1. by overlap: a cluster takes the label that its (chunk, local speaker)
//!    pairs carried before (one-to-one, Kuhn–Munkres on shared frames);
//! 2. by voice: a cluster without overlap (a speaker whose earlier turns
//!    left the horizon) takes the most similar absent speaker's label when
//!    the centroids' cosine similarity reaches `RETURNING_SIMILARITY`;
//! 3. otherwise it is a new speaker with a new label.
//!
//! Speakers whose frames all went to another label are reported merged;
//! a cluster cut out of a labelled speaker is reported as a split.

use ndarray::{Array2, ArrayView1, ArrayView2};
use pathfinding::prelude::{kuhn_munkres, Matrix};

/// Cosine similarity between a new cluster's centroid and an absent
/// speaker's model above which the speaker is taken to have returned.
/// CAM++ centroids of two halves of one speaker's speech (sim-dev, 49
/// speakers) scored 0.79–0.99; of different speakers at most 0.65, 99 % of
/// pairs below 0.59.
pub const RETURNING_SIMILARITY: f64 = 0.6;
/// The archived model of a speaker weighs at most this many embeddings, so
/// that it follows a voice over days instead of freezing.
const MAX_ARCHIVED_WEIGHT: f64 = 500.0;
/// At most this many speakers are remembered; the least recently seen go.
const MAX_SPEAKERS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelChange {
    /// Speaker `from` turned out to be speaker `into`; `from` is retired.
    Merged { from: usize, into: usize },
    /// Part of speaker `from` is a different person, now speaker `new`.
    Split { from: usize, new: usize },
}

#[derive(Debug, Clone)]
struct Speaker {
    id: usize,
    /// Sum and weight of the clean embeddings that left the horizon.
    archived: Vec<f64>,
    weight: f64,
    retired: bool,
    /// Started by an incremental guess and not yet confirmed by a
    /// re-clustering: the guess is no evidence of who it is.
    tentative: bool,
    /// Stream position (s) where the speaker was last labelled.
    last_seen: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Registry {
    speakers: Vec<Speaker>,
    next_id: usize,
}

/// Embedding sums of the speakers present in the horizon.
pub type HorizonSums = std::collections::BTreeMap<usize, (Vec<f64>, f64)>;

impl Registry {
    pub fn new_speaker(&mut self, now: f64) -> usize {
        self.add_speaker(now, false)
    }

    /// A speaker guessed between re-clusterings, to be confirmed by the next.
    pub fn new_tentative_speaker(&mut self, now: f64) -> usize {
        self.add_speaker(now, true)
    }

    fn is_tentative(&self, id: usize) -> bool {
        self.speakers.iter().any(|s| s.id == id && s.tentative)
    }

    fn add_speaker(&mut self, now: f64, tentative: bool) -> usize {
        let id = self.next_id;
        self.next_id += 1;
        self.speakers.push(Speaker {
            id,
            archived: Vec::new(),
            weight: 0.0,
            retired: false,
            tentative,
            last_seen: now,
        });
        if self.speakers.len() > MAX_SPEAKERS {
            let oldest = (0..self.speakers.len()).min_by(|&a, &b| {
                self.speakers[a]
                    .last_seen
                    .total_cmp(&self.speakers[b].last_seen)
            });
            if let Some(i) = oldest {
                self.speakers.remove(i);
            }
        }
        id
    }

    /// Speakers ever labelled (retired ones included): the next new label.
    pub fn labels_used(&self) -> usize {
        self.next_id
    }

    fn get_mut(&mut self, id: usize) -> Option<&mut Speaker> {
        self.speakers.iter_mut().find(|s| s.id == id)
    }

    pub fn seen(&mut self, id: usize, now: f64) {
        if let Some(s) = self.get_mut(id) {
            s.last_seen = s.last_seen.max(now);
        }
    }

    /// Adds an embedding leaving the horizon to its speaker's long-term model.
    pub fn archive(&mut self, id: usize, embedding: ArrayView1<f32>) {
        let Some(s) = self.get_mut(id) else { return };
        if s.archived.len() != embedding.len() {
            s.archived = vec![0.0; embedding.len()];
            s.weight = 0.0;
        }
        if s.weight >= MAX_ARCHIVED_WEIGHT {
            let keep = (MAX_ARCHIVED_WEIGHT - 1.0) / s.weight;
            s.archived.iter_mut().for_each(|v| *v *= keep);
            s.weight *= keep;
        }
        s.archived
            .iter_mut()
            .zip(embedding)
            .for_each(|(a, &e)| *a += e as f64);
        s.weight += 1.0;
    }

    fn retire(&mut self, from: usize, into: usize) {
        let Some(i) = self.speakers.iter().position(|s| s.id == from) else {
            return;
        };
        let gone = std::mem::replace(&mut self.speakers[i].archived, Vec::new());
        let weight = std::mem::take(&mut self.speakers[i].weight);
        self.speakers[i].retired = true;
        if let Some(target) = self.get_mut(into) {
            if target.archived.len() == gone.len() {
                target
                    .archived
                    .iter_mut()
                    .zip(&gone)
                    .for_each(|(a, g)| *a += g);
                target.weight += weight;
            } else if target.weight == 0.0 {
                target.archived = gone;
                target.weight = weight;
            }
        }
    }

    /// Voice models `(id, centroid)` of the speakers not retired: archived
    /// embeddings plus those in the horizon.
    pub fn models(&self, horizon: &HorizonSums) -> Vec<(usize, Vec<f64>)> {
        let mut out = Vec::new();
        for s in self.speakers.iter().filter(|s| !s.retired) {
            let (mut sum, mut weight) = (s.archived.clone(), s.weight);
            if let Some((h, w)) = horizon.get(&s.id) {
                if sum.len() != h.len() {
                    sum = vec![0.0; h.len()];
                    weight = 0.0;
                }
                sum.iter_mut().zip(h).for_each(|(a, b)| *a += b);
                weight += w;
            }
            if weight > 0.0 {
                out.push((s.id, sum.into_iter().map(|v| v / weight).collect()));
            }
        }
        out
    }

    /// Labels for the clusters of a re-clustering.
    ///
    /// `overlap[cluster][j]`: frames the cluster shares with speaker
    /// `previous[j]` in the horizon; `centroids`: the clusters' centroids.
    pub fn match_clusters(
        &mut self,
        overlap: &Array2<f64>,
        previous: &[usize],
        centroids: ArrayView2<f32>,
        horizon: &HorizonSums,
        live: &[bool],
        settled: &[usize],
        now: f64,
    ) -> (Vec<usize>, Vec<LabelChange>) {
        let k = centroids.nrows();
        let mut label: Vec<Option<usize>> = vec![None; k];
        // A cluster of settled chunks alone relabels nothing: it keeps the
        // label it overlaps most and takes no part in the matching.
        let mut contested = overlap.clone();
        for c in (0..k).filter(|&c| !live[c]) {
            label[c] = best_column(overlap, c).map(|j| previous[j]);
            contested.row_mut(c).fill(0.0);
        }
        let tentative: Vec<bool> = previous.iter().map(|&id| self.is_tentative(id)).collect();
        // 1. Overlap with the labels the horizon carried.
        for (cluster, j) in one_to_one(&contested) {
            label[cluster] = Some(previous[j]);
        }
        // 2. Returning speakers: those absent from the horizon. A cluster
        // holding only a guessed (tentative) label may be one of them too.
        let absent: Vec<(usize, Vec<f64>)> = self
            .models(horizon)
            .into_iter()
            .filter(|(id, _)| !label.contains(&Some(*id)) && !self.is_tentative(*id))
            .collect();
        let open: Vec<usize> = (0..k)
            .filter(|&c| live[c] && label[c].is_none_or(|id| self.is_tentative(id)))
            .collect();
        if !absent.is_empty() && !open.is_empty() {
            let sim = Array2::from_shape_fn((open.len(), absent.len()), |(i, j)| {
                let s = cosine(centroids.row(open[i]), &absent[j].1);
                if s >= RETURNING_SIMILARITY {
                    s
                } else {
                    0.0
                }
            });
            for (i, j) in one_to_one(&sim) {
                label[open[i]] = Some(absent[j].0);
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
                    let from = (0..previous.len())
                        .filter(|&j| !tentative[j] && overlap[[cluster, j]] > 0.0)
                        .max_by(|&a, &b| overlap[[cluster, a]].total_cmp(&overlap[[cluster, b]]))
                        .map(|j| previous[j]);
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
                // A guess that no re-clustering confirmed is not worth a message.
                if !tentative[j] {
                    changes.push(LabelChange::Merged { from, into: out[c] });
                }
                self.retire(from, out[c]);
            }
        }
        (out, changes)
    }
}

/// Max-total one-to-one pairs (row, column) with a positive score.
fn one_to_one(scores: &Array2<f64>) -> Vec<(usize, usize)> {
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

fn best_column(scores: &Array2<f64>, row: usize) -> Option<usize> {
    (0..scores.ncols())
        .filter(|&c| scores[[row, c]] > 0.0)
        .max_by(|&a, &b| scores[[row, a]].total_cmp(&scores[[row, b]]))
}

pub fn cosine(a: ArrayView1<f32>, b: &[f64]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let x = x as f64;
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa > 0.0 && bb > 0.0 {
        ab / (aa.sqrt() * bb.sqrt())
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn clusters_keep_the_labels_they_overlap() {
        let mut r = Registry::default();
        let (a, b) = (r.new_speaker(0.0), r.new_speaker(0.0));
        // The clustering swapped its numbering: cluster 0 is speaker b.
        let overlap = array![[0.0, 90.0], [80.0, 2.0]];
        let centroids = array![[1.0f32, 0.0], [0.0, 1.0]];
        let (labels, changes) = r.match_clusters(
            &overlap,
            &[a, b],
            centroids.view(),
            &HorizonSums::new(),
            &[true; 3][..centroids.nrows()],
            &[],
            1.0,
        );
        assert_eq!(labels, vec![b, a]);
        assert!(changes.is_empty());
    }

    #[test]
    fn merges_splits_and_returning_speakers_are_named() {
        let mut r = Registry::default();
        let (a, b, gone) = (r.new_speaker(0.0), r.new_speaker(0.0), r.new_speaker(0.0));
        r.archive(gone, array![0.0f32, 0.0, 1.0].view());
        // Cluster 0 holds all of a and b (merge); cluster 1 is cut out of
        // a (split); cluster 2 sounds like the absent speaker.
        let overlap = array![[50.0, 40.0], [10.0, 0.0], [0.0, 0.0]];
        let centroids = array![[1.0f32, 0.0, 0.0], [0.0, 1.0, 0.0], [0.1, 0.0, 1.0]];
        let (labels, changes) = r.match_clusters(
            &overlap,
            &[a, b],
            centroids.view(),
            &HorizonSums::new(),
            &[true; 3][..centroids.nrows()],
            &[],
            1.0,
        );
        assert_eq!(labels[0], a);
        assert_eq!(labels[2], gone);
        let new = labels[1];
        assert!(new > gone);
        assert!(changes.contains(&LabelChange::Split { from: a, new }));
        assert!(changes.contains(&LabelChange::Merged { from: b, into: a }));
        assert_eq!(
            r.models(&HorizonSums::new()).len(),
            1,
            "only the archived, unretired speaker has a model"
        );
    }
}
