//! Names for speakers: enrolled voices, each given to at most one of the
//! registry's speakers (one-to-one, the highest total score) whose voice
//! model scores at or above the threshold against it. Naming never moves a
//! label: a speaker keeps its `SPEAKER_nn` number, and the name is shown
//! in its place while the match holds.

use std::collections::BTreeMap;

use ndarray::Array2;

use super::matching::one_to_one;
use super::{HorizonSums, Registry, Voice};
use crate::models::voices::{EnrolledVoice, MetSpeaker, ModelIdentity, Voices};

/// Default naming threshold (PLDA log-likelihood ratio of "same speaker"):
/// chosen for few false accepts, measured in docs/voices.md
/// (`evaluate --identify`).
pub const DEFAULT_NAMING_THRESHOLD: f64 = 30.0;

/// Who a speaker is, and how sure the match is.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub name: String,
    /// The voice score against the enrolled voice: a PLDA log-likelihood
    /// ratio (cosine similarity for a model set without PLDA).
    pub score: f64,
}

/// Speaker label number → identity, for the named speakers only.
pub type Identities = BTreeMap<usize, Identity>;

/// Enrolled voices and the bar a speaker's voice must reach to take a name.
#[derive(Debug, Clone, Default)]
pub struct KnownVoices {
    pub voices: Vec<EnrolledVoice>,
    pub threshold: f64,
}

impl KnownVoices {
    /// The names `models` (speaker id, mean, weight) earn.
    pub fn identify(&self, models: &[super::Model], voice: &Voice) -> Identities {
        let known = &self.voices;
        if known.is_empty() || models.is_empty() {
            return Identities::new();
        }
        // Means scored as one embedding each: counting every embedding as
        // independent evidence (they overlap tenfold at a 1 s step) put
        // a voice's own score anywhere from +40 to −800 depending on how
        // much speech it rests on; means alone keep own voices ≥ +39 and
        // others ≤ +28 on the shared sets (`evaluate --identify`).
        let scores = Array2::from_shape_fn((models.len(), known.len()), |(i, j)| {
            voice.score(&models[i].mean, 1.0, &known[j].mean, 1.0)
        });
        // Kuhn–Munkres takes positive weights: the margin over the bar.
        let margin = scores.mapv(|s| {
            if s >= self.threshold {
                s - self.threshold + 1e-3
            } else {
                0.0
            }
        });
        one_to_one(&margin)
            .into_iter()
            .map(|(i, j)| {
                let identity = Identity {
                    name: known[j].name.clone(),
                    score: scores[[i, j]],
                };
                (models[i].id, identity)
            })
            .collect()
    }
}

impl Registry {
    /// A registry that knows `voices`: the speakers met before (same labels,
    /// same models) and the enrolled voices to name speakers with.
    pub fn from_voices(voices: &Voices, threshold: f64) -> Self {
        let mut registry = Registry::default();
        for m in &voices.met {
            registry.speakers.push(super::Speaker {
                id: m.label,
                archived: m.mean.iter().map(|v| v * m.weight).collect(),
                weight: m.weight,
                tentative: false,
                last_seen: m.last_seen,
            });
        }
        registry.next_id = voices.next_label;
        registry.known = Some(KnownVoices {
            voices: voices.enrolled.clone(),
            threshold,
        });
        registry
    }

    /// What a voices file keeps of this registry: its enrolled voices and
    /// every speaker with a voice model (call after the stream archived its
    /// horizon, `take_registry`).
    pub fn to_voices(&self, models: ModelIdentity) -> Voices {
        let met = self
            .speakers
            .iter()
            .filter(|s| s.weight > 0.0 && !s.archived.is_empty())
            .map(|s| MetSpeaker {
                label: s.id,
                mean: s.archived.iter().map(|v| v / s.weight).collect(),
                weight: s.weight,
                last_seen: s.last_seen,
            })
            .collect();
        Voices {
            models,
            enrolled: self
                .known
                .as_ref()
                .map(|k| k.voices.clone())
                .unwrap_or_default(),
            next_label: self.next_id,
            met,
        }
    }

    /// Names the speakers from their models (`horizon`: the sums of the
    /// speakers in the horizon, added to what they archived).
    pub fn identify(&mut self, voice: &Voice, horizon: &HorizonSums) {
        let Some(known) = self.known.as_ref().filter(|k| !k.voices.is_empty()) else {
            return;
        };
        self.identities = known.identify(&self.models(horizon), voice);
    }

    /// The names earned so far; None when no voices file was loaded (and
    /// turns carry no identity fields at all).
    pub fn identities(&self) -> Option<&Identities> {
        self.known.as_ref().map(|_| &self.identities)
    }

    pub fn known(&self) -> Option<&KnownVoices> {
        self.known.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::registry::Model;

    fn known(names: &[(&str, [f64; 2])], threshold: f64) -> KnownVoices {
        KnownVoices {
            voices: names
                .iter()
                .map(|(n, v)| EnrolledVoice {
                    name: n.to_string(),
                    mean: v.to_vec(),
                    weight: 1.0,
                })
                .collect(),
            threshold,
        }
    }

    fn model(id: usize, mean: [f64; 2]) -> Model {
        Model {
            id,
            mean: mean.to_vec(),
            weight: 1.0,
        }
    }

    #[test]
    fn each_name_goes_to_one_speaker_above_the_bar() {
        let k = known(&[("anchor", [1.0, 0.0]), ("guest", [0.0, 1.0])], 0.9);
        // Speakers 3 and 5 both sound like the anchor; 3 more so. Nobody
        // is close enough to the guest.
        let models = [
            model(3, [1.0, 0.05]),
            model(5, [1.0, 0.2]),
            model(7, [0.6, 0.8]),
        ];
        let names = k.identify(&models, &Voice::Cosine);
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(names[&3].name, "anchor");
        assert!(names[&3].score > 0.99);
    }

    #[test]
    fn a_registry_keeps_its_speakers_through_a_voices_file() {
        let mut r = Registry::default();
        let (a, b) = (r.new_speaker(0.0), r.new_speaker(5.0));
        r.archive(a, ndarray::array![2.0, 4.0].view());
        r.archive(a, ndarray::array![4.0, 6.0].view());
        let _ = b; // no voice model: nothing to keep but its label number
        let voices = r.to_voices(ModelIdentity::default());
        assert_eq!(voices.next_label, 2);
        assert_eq!(voices.met.len(), 1);
        assert_eq!(voices.met[0].mean, vec![3.0, 5.0]);
        let back = Registry::from_voices(&voices, 0.0);
        assert_eq!(back.labels_used(), 2);
        let m = back.models(&HorizonSums::new());
        assert_eq!(
            (m[0].id, m[0].weight, m[0].mean.clone()),
            (a, 2.0, vec![3.0, 5.0])
        );
    }
}
