//! Enrolling a voice: the voice features of one person's speech in a
//! recording, computed as a diarization computes a speaker's (the mean of
//! the features of the clean per-chunk embeddings), so that the two
//! compare like for like.

use ndarray::Axis;

use super::Voice;
use crate::engine::clustering::clean_speakers;
use crate::engine::config::{FRAME_DURATION, FRAME_STEP, LOCAL_SPEAKERS};
use crate::engine::loaded::LoadedModels;
use crate::engine::output::diarization::effective_config;
use crate::engine::stream::{StreamConfig, StreamingDiarizer};
use crate::models::voices::{check_name, EnrolledVoice};
use crate::models::ModelError;

/// Shares of a chunk's local speaker's active frames that must lie in the
/// person's own turns, and in theirs alone, for its embedding to count.
/// Overlapped speech is tolerated (the embedding leaves out frames the
/// segmentation hears overlapped): people in meetings speak over each other.
const MIN_OWN_SHARE: f64 = 0.8;
const MIN_ALONE_SHARE: f64 = 0.25;
/// Fewest active frames (1 s) of a local speaker whose embedding counts
/// when turns are given. The turns, not the segmentation's overlap, say
/// whose speech it is, so the clustering's "clean" filter (2 s alone) is
/// not needed, and it would refuse people who speak in short turns.
const MIN_TURN_FRAMES: usize = 59;

/// Whose speech a recording holds.
pub enum Whose<'a> {
    /// One person speaks throughout.
    OnePerson,
    /// Several people; the person's turns and everyone else's, in seconds
    /// (an RTTM of the recording, e.g. one this element wrote).
    Turns {
        own: &'a [(f64, f64)],
        others: &'a [(f64, f64)],
    },
}

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("{0}")]
    Name(String),
    #[error(transparent)]
    Models(#[from] ModelError),
    #[error("no clean speech of {name} to enrol ({chunks} chunks analysed): give more of their speech alone (a few seconds at least)")]
    NoSpeech { name: String, chunks: usize },
}

/// The enrolled voice of `name` from 16 kHz `samples`.
pub fn enroll(
    models: &LoadedModels,
    name: &str,
    samples: &[f32],
    whose: &Whose,
) -> Result<EnrolledVoice, EnrollError> {
    check_name(name).map_err(EnrollError::Name)?;
    let config = StreamConfig::default();
    let mut stream = StreamingDiarizer::new(models.clone(), &config)?;
    let step = stream.step_seconds();
    stream.push(samples)?;
    let analyses = stream.finish_analyses()?;
    let ratio = effective_config(&models.clustering, models.plda.is_some()).min_active_ratio;
    let voice = Voice::new(models.plda.clone());
    let within = |t: f64, turns: &[(f64, f64)]| turns.iter().any(|&(a, b)| a <= t && t < b);
    let (mut sum, mut weight) = (Vec::new(), 0.0);
    for a in analyses.iter().filter(|a| !a.is_skipped()) {
        let clean = clean_speakers(a.activity.view(), a.embeddings.view(), ratio);
        let features = voice.features(a.embeddings.view());
        let start = a.index as f64 * step;
        let finite = |s: usize| a.embeddings.row(s).iter().all(|v| v.is_finite());
        for s in (0..LOCAL_SPEAKERS).filter(|&s| finite(s) && features.ncols() > 0) {
            if let Whose::Turns { own, others } = whose {
                let active: Vec<f64> = a
                    .activity
                    .index_axis(Axis(1), s)
                    .iter()
                    .enumerate()
                    .filter(|(_, &v)| v > 0.5)
                    .map(|(f, _)| start + f as f64 * FRAME_STEP + FRAME_DURATION / 2.0)
                    .collect();
                let own_frames = active.iter().filter(|&&t| within(t, own)).count();
                let alone = active
                    .iter()
                    .filter(|&&t| within(t, own) && !within(t, others))
                    .count();
                let share = |n: usize| n as f64 / active.len().max(1) as f64;
                if active.len() < MIN_TURN_FRAMES
                    || share(own_frames) < MIN_OWN_SHARE
                    || share(alone) < MIN_ALONE_SHARE
                {
                    continue;
                }
            } else if !clean[s] {
                continue;
            }
            super::accumulate(&mut sum, &mut weight, features.row(s).iter(), 1.0, 1.0);
        }
    }
    if weight < 1.0 {
        return Err(EnrollError::NoSpeech {
            name: name.into(),
            chunks: analyses.len(),
        });
    }
    Ok(EnrolledVoice {
        name: name.into(),
        mean: sum.iter().map(|v| v / weight).collect(),
        weight,
    })
}
