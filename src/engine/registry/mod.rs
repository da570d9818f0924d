//! The speakers a stream has met, under labels that stay stable.
//!
//! Each re-clustering of the recent horizon numbers its clusters afresh;
//! the registry maps them onto the speakers it already knows:
//! 1. by overlap: a cluster takes the label that its (chunk, local speaker)
//!    pairs carried before (one-to-one, Kuhn–Munkres on shared frames);
//! 2. by voice: a cluster without overlap, or holding only a label guessed
//!    since the last re-clustering, takes the most similar absent
//!    speaker's label when their voices score above `Voice::returning_bar`
//!    (a speaker whose earlier turns left the horizon, or who was merged
//!    away);
//! 3. otherwise it is a new speaker with a new label.
//!
//! Speakers whose frames all went to another label are reported merged but
//! keep their voice model, so that a clustering's mistake can be undone; a
//! cluster cut out of a labelled speaker is reported as a split. Guesses
//! that no re-clustering confirmed come and go without a report.
//!
//! Enrolled voices (`names.rs`) do not take part in any of this: they put
//! names on speakers after the fact, so labels are the same with or
//! without them.

pub mod enroll;
mod matching;
mod names;
mod voice;

pub use matching::Reclustering;
pub use names::{Identities, Identity, KnownVoices, DEFAULT_NAMING_THRESHOLD};
pub use voice::Voice;

use ndarray::ArrayView1;

/// The archived model of a speaker weighs at most this many embeddings, so
/// that it follows a voice over days instead of freezing.
const MAX_ARCHIVED_WEIGHT: f64 = 500.0;
/// At most this many speakers are remembered; the least recently seen go.
const MAX_SPEAKERS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelChange {
    /// Speaker `from`'s turns now carry `into`'s label; `from` may come
    /// back under its own label if its voice returns apart from `into`'s.
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
    /// Enrolled voices; None unless a voices file was loaded.
    known: Option<KnownVoices>,
    /// Names the speakers earned at the last `identify`.
    identities: Identities,
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

    /// Speakers guessed and not yet confirmed.
    pub fn guessed_ids(&self) -> Vec<usize> {
        self.tentative_ids()
    }

    /// Speakers guessed and not yet confirmed.
    fn tentative_ids(&self) -> Vec<usize> {
        self.speakers
            .iter()
            .filter(|s| s.tentative)
            .map(|s| s.id)
            .collect()
    }

    fn add_speaker(&mut self, now: f64, tentative: bool) -> usize {
        let id = self.next_id;
        self.next_id += 1;
        self.speakers.push(Speaker {
            id,
            archived: Vec::new(),
            weight: 0.0,
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

    /// Speakers ever labelled (those since forgotten included): the next new label.
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

    /// Adds the voice features of an embedding leaving the horizon to its
    /// speaker's long-term model.
    pub fn archive(&mut self, id: usize, embedding: ArrayView1<f64>) {
        let Some(s) = self.get_mut(id) else { return };
        if s.weight >= MAX_ARCHIVED_WEIGHT && s.archived.len() == embedding.len() {
            let keep = (MAX_ARCHIVED_WEIGHT - 1.0) / s.weight;
            s.archived.iter_mut().for_each(|v| *v *= keep);
            s.weight *= keep;
        }
        accumulate(&mut s.archived, &mut s.weight, embedding.iter(), 1.0, 1.0);
    }

    /// A speaker merged away by a re-clustering keeps its voice (its
    /// horizon embeddings join its long-term model) and can come back
    /// under its own label: the merge may have been the clustering's error.
    fn park(&mut self, id: usize, horizon: &HorizonSums) {
        let Some((sum, weight)) = horizon.get(&id) else {
            return;
        };
        let Some(s) = self.get_mut(id) else { return };
        accumulate(&mut s.archived, &mut s.weight, sum.iter(), *weight, 1.0);
    }

    /// A guess no re-clustering confirmed leaves the registry; whatever
    /// its model held goes to the speaker that took its frames.
    fn retire(&mut self, from: usize, into: usize) {
        let Some(i) = self.speakers.iter().position(|s| s.id == from) else {
            return;
        };
        let gone = self.speakers.remove(i);
        if let Some(target) = self.get_mut(into) {
            accumulate(
                &mut target.archived,
                &mut target.weight,
                gone.archived.iter(),
                gone.weight,
                1.0,
            );
        }
    }

    /// Voice models of the speakers: archived features plus those in the
    /// horizon.
    pub fn models(&self, horizon: &HorizonSums) -> Vec<Model> {
        let mut out = Vec::new();
        for s in &self.speakers {
            let (mut sum, mut weight) = (s.archived.clone(), s.weight);
            if let Some((h, w)) = horizon.get(&s.id) {
                accumulate(&mut sum, &mut weight, h.iter(), *w, 1.0);
            }
            if weight > 0.0 {
                out.push(Model {
                    id: s.id,
                    mean: sum.into_iter().map(|v| v / weight).collect(),
                    weight,
                });
            }
        }
        out
    }
}

/// Adds `sign` × `values` (which weigh `weight_of_values`) to a running
/// `sum` and its `weight`; no values add nothing, and a sum of another
/// length (or none yet) restarts from zero.
pub fn accumulate<'a>(
    sum: &mut Vec<f64>,
    weight: &mut f64,
    values: impl ExactSizeIterator<Item = &'a f64>,
    weight_of_values: f64,
    sign: f64,
) {
    if values.len() == 0 {
        return;
    }
    if sum.len() != values.len() {
        *sum = vec![0.0; values.len()];
        *weight = 0.0;
    }
    sum.iter_mut().zip(values).for_each(|(a, v)| *a += sign * v);
    *weight += sign * weight_of_values;
}

/// A speaker's voice: the mean of its features and how many went in.
#[derive(Debug, Clone)]
pub struct Model {
    pub id: usize,
    pub mean: Vec<f64>,
    pub weight: f64,
}
