//! The live state of a stream: the chunks of the recent horizon with the
//! stable speaker labels their local speakers carry, the speaker registry,
//! and when to re-cluster.
//!
//! - A new chunk's speakers are assigned to the known speakers at once
//!   (one-to-one, scored by `registry::Voice`); a clean embedding that
//!   matches nobody starts a tentative speaker. Its turns are known right
//!   away (`labelling.rs`).
//! - Every `cluster_interval` the horizon is re-clustered (PLDA + VBx) and
//!   the clusters are named with the registry's labels (`registry`).
//!   Chunks more than `SETTLE_SECONDS` old keep their labels from then on.
//! - Chunks older than `horizon` leave: the frames only they covered become
//!   final, their clean embeddings go into the speakers' long-term models.
//!   Memory and clustering time are bounded by the horizon, not the stream.
//! - Turns are rebuilt from the labels and spliced onto the final part
//!   (`turns.rs`).

mod labelling;
mod returning;
mod turns;

use turns::{cut_before, cut_from, join};

use std::collections::VecDeque;

use crate::engine::clustering::assign::NO_SPEAKER;
use crate::engine::clustering::ClusteringConfig;
use crate::engine::config::{CHUNK_SECONDS, LOCAL_SPEAKERS};
use crate::engine::frontend::chunks::ChunkAnalysis;
use crate::engine::loaded::LoadedModels;
use crate::engine::output::reconstruct::Turn;
use crate::engine::registry::{HorizonSums, Identities, LabelChange, Registry, Voice};
use crate::models::ModelError;

/// Chunks this far (s) behind the analysed audio keep their labels: later
/// re-clusterings still learn from them but no longer relabel them, so a
/// speaker thinning out at the horizon's old end is not merged away.
const SETTLE_SECONDS: f64 = 60.0;
/// Up to this much kept analysis (s), re-clustering comes every few chunks
/// rather than every `cluster_interval`: after every chunk where the labels
/// are watched, else after every `UNWATCHED_EAGER_EVERY`.
const EAGER_SECONDS: f64 = 120.0;
/// About one inference batch: where the early labels are not watched,
/// re-clustering after each chunk only costs more and starts more
/// tentative speakers (whose labels are then used up).
const UNWATCHED_EAGER_EVERY: usize = 8;
/// Turns of one speaker closer than this (s) where two computations meet
/// (their frame grids may be offset by less than a frame) are one turn.
const SPLICE_GAP: f64 = 0.02;

#[derive(Debug, Clone, PartialEq)]
pub struct OnlineConfig {
    /// Seconds of analysed audio between re-clusterings; 0: only at the end
    /// (and no turns before it).
    pub cluster_interval: f64,
    /// Seconds of chunks kept for re-clustering; 0 keeps everything.
    pub horizon: f64,
    /// The labels are watched as the audio plays (held buffers, a live
    /// source). Unwatched (a file), early re-clusterings come less often,
    /// and the answer at the end is one clustering of everything kept, as
    /// if nothing had been shown before: the interim labels only name it.
    pub watched: bool,
}

impl Default for OnlineConfig {
    fn default() -> Self {
        Self {
            cluster_interval: 0.0,
            horizon: 0.0,
            watched: true,
        }
    }
}

/// What changed since the previous update.
#[derive(Debug, Clone, Default)]
pub struct Update {
    /// Turns that became final (they will not change again).
    pub finalized: Vec<Turn>,
    /// Every not-yet-final turn, from `final_until` to `analysed_until`.
    pub provisional: Vec<Turn>,
    pub final_until: f64,
    pub analysed_until: f64,
    pub changes: Vec<LabelChange>,
    pub reclustered: bool,
    /// Wall time the re-clustering took (s).
    pub clustering_seconds: f64,
    /// Speakers with a turn in the horizon.
    pub active_speakers: usize,
    /// Names of the speakers who match an enrolled voice; None without a
    /// voices file.
    pub identities: Option<Identities>,
}

struct Kept {
    analysis: ChunkAnalysis,
    /// Voice features of the local speakers' embeddings (`Voice::features`).
    voice: ndarray::Array2<f64>,
    labels: [i32; LOCAL_SPEAKERS],
    /// The labels the live turns show: `labels`, except where a newer
    /// chunk heard more of the same voice (`stitch_back`).
    shown: [i32; LOCAL_SPEAKERS],
    /// Clean enough to train the clustering (and a speaker's model).
    clean: [bool; LOCAL_SPEAKERS],
    /// Labels settled: re-clusterings still learn from the chunk but no
    /// longer relabel it.
    settled: bool,
    /// Labels set by a re-clustering rather than guessed for the chunk alone.
    confirmed: bool,
}

pub struct Online {
    step: f64,
    config: OnlineConfig,
    clustering: ClusteringConfig,
    kept: VecDeque<Kept>,
    dimension: usize,
    registry: Registry,
    voice: Voice,
    sums: HorizonSums,
    final_until: f64,
    finalized: Vec<Turn>,
    provisional: Vec<Turn>,
    /// Where `provisional` ends (s).
    provisional_until: f64,
    next_cluster: f64,
    /// Labels in the last clustering's cluster order: reconstruction breaks
    /// ties by column, and pyannote's columns are in cluster order.
    cluster_order: Vec<usize>,
}

fn fail(stage: &str, e: &dyn std::fmt::Display) -> ModelError {
    ModelError::Inference(format!("{stage}: {e}"))
}

impl Online {
    pub fn new(step: f64, config: OnlineConfig, models: &LoadedModels, registry: Registry) -> Self {
        let clustering = crate::engine::output::diarization::effective_config(
            &models.clustering,
            models.plda.is_some(),
        );
        let first = config.cluster_interval.min(CHUNK_SECONDS);
        Self {
            step,
            config,
            clustering,
            kept: VecDeque::new(),
            dimension: 0,
            registry,
            voice: Voice::new(models.plda.clone()),
            sums: HorizonSums::new(),
            final_until: 0.0,
            finalized: Vec::new(),
            provisional: Vec::new(),
            provisional_until: 0.0,
            next_cluster: first,
            cluster_order: Vec::new(),
        }
    }

    /// The registry, with every kept speaker's clean embeddings archived:
    /// what a later stream (after a flushing seek) knows of these speakers.
    /// The stream is over: nothing stays kept.
    pub fn take_registry(&mut self) -> Registry {
        for k in std::mem::take(&mut self.kept) {
            self.archive(&k);
        }
        self.sums.clear();
        std::mem::take(&mut self.registry)
    }

    /// A chunk leaves: its clean embeddings go into its speakers' long-term models.
    fn archive(&mut self, k: &Kept) {
        for s in (0..LOCAL_SPEAKERS).filter(|&s| k.clean[s]) {
            if let Ok(id) = usize::try_from(k.labels[s]) {
                self.registry.archive(id, k.voice.row(s));
            }
        }
    }

    /// Names of the speakers who match an enrolled voice (as of the last
    /// re-clustering).
    pub fn identities(&self) -> Option<&Identities> {
        self.registry.identities()
    }

    /// Chunks held for re-clustering (bounded by the horizon when live).
    pub fn kept_chunks(&self) -> usize {
        self.kept.len()
    }

    fn live(&self) -> bool {
        self.config.cluster_interval > 0.0
    }

    fn chunk_end(&self, index: usize) -> f64 {
        index as f64 * self.step + CHUNK_SECONDS
    }

    /// Takes newly analysed chunks (in index order); `analysed_until` is the
    /// audio they cover (s). Returns the new turns in live mode.
    ///
    /// The labels depend on the chunks alone, not on how many came per
    /// call (which is how fast they were analysed): each chunk is labelled,
    /// re-clustered after and evicted in turn, at the chunk's own end.
    pub fn add(
        &mut self,
        chunks: Vec<ChunkAnalysis>,
        analysed_until: f64,
        models: &LoadedModels,
    ) -> Result<Option<Update>, ModelError> {
        let Some(first_new) = chunks.first().map(|c| c.index) else {
            return Ok(None);
        };
        let mut update = Update {
            analysed_until,
            ..Default::default()
        };
        let mut redo_from = first_new as f64 * self.step;
        for analysis in chunks {
            let index = analysis.index;
            if !analysis.is_skipped() {
                self.dimension = analysis.embeddings.ncols();
            }
            let clean = clean_speakers(&analysis, self.clustering.min_active_ratio);
            let voice = self.voice.features(analysis.embeddings.view());
            let mut kept = Kept {
                analysis,
                voice,
                labels: [NO_SPEAKER; LOCAL_SPEAKERS],
                shown: [NO_SPEAKER; LOCAL_SPEAKERS],
                clean,
                settled: false,
                confirmed: false,
            };
            if !self.live() {
                self.kept.push_back(kept);
                continue;
            }
            kept.labels = self.label_incrementally(&kept);
            kept.shown = kept.labels;
            self.contribute(&kept, 1.0);
            self.kept.push_back(kept);
            if let Some(from) = self.stitch_back() {
                redo_from = redo_from.min(from);
            }
            let until = self.chunk_end(index);
            if self.recluster_due(index, until) {
                let started = std::time::Instant::now();
                update.changes.extend(self.recluster(models, true)?);
                self.registry.identify(&self.voice, &self.sums);
                update.reclustered = true;
                update.clustering_seconds += started.elapsed().as_secs_f64();
                self.next_cluster = until
                    + until.clamp(
                        CHUNK_SECONDS,
                        self.config.cluster_interval.max(CHUNK_SECONDS),
                    );
            }
            update.finalized.extend(self.evict(until)?);
        }
        if !self.live() {
            return Ok(None);
        }
        // (An eviction that had to compute turns left them ending before
        // `redo_from`: rebuilt whole, too.)
        if update.reclustered || self.provisional_until < redo_from {
            self.provisional = self.turns_from(0, self.final_until, analysed_until, false)?;
        } else {
            let from_chunk = self
                .kept
                .iter()
                .position(|k| self.chunk_end(k.analysis.index) > redo_from)
                .unwrap_or(0);
            let fresh = self.turns_from(
                from_chunk,
                redo_from.max(self.final_until),
                analysed_until,
                false,
            )?;
            let mut kept: Vec<Turn> = cut_before(&self.provisional, redo_from);
            kept.extend(fresh);
            self.provisional = join(kept, SPLICE_GAP);
        }
        self.provisional_until = analysed_until;
        update.finalized = join(update.finalized, SPLICE_GAP);
        update.final_until = self.final_until;
        update.provisional = self.provisional.clone();
        let mut active: Vec<usize> = self.provisional.iter().map(|t| t.speaker).collect();
        active.sort_unstable();
        active.dedup();
        update.active_speakers = active.len();
        update.identities = self.registry.identities().cloned();
        Ok(Some(update))
    }

    /// Whether the horizon is re-clustered once chunk `index` (ending at
    /// `until` s) is in: every chunk or few while little is kept (clustering
    /// then costs milliseconds and early turns get the best labels there
    /// are), else every `cluster_interval`. Counted in chunks, not calls,
    /// so that the labels do not depend on how fast chunks were analysed.
    fn recluster_due(&self, index: usize, until: f64) -> bool {
        let eager = self.kept.len() as f64 * self.step <= EAGER_SECONDS;
        let every = if self.config.watched {
            1
        } else {
            UNWATCHED_EAGER_EVERY
        };
        until >= self.next_cluster || (eager && (index + 1) % every == 0)
    }

    /// Re-clusters everything kept and returns every turn of the stream.
    pub fn finish(
        &mut self,
        duration: f64,
        models: &LoadedModels,
    ) -> Result<Vec<Turn>, ModelError> {
        if !self.config.watched {
            self.kept.iter_mut().for_each(|k| k.settled = false);
        }
        self.recluster(models, self.config.watched)?;
        self.registry.identify(&self.voice, &self.sums);
        self.provisional = self.turns_from(0, self.final_until, duration, true)?;
        let mut all = std::mem::take(&mut self.finalized);
        all.append(&mut self.provisional);
        // Final and provisional turns meet exactly at `final_until`.
        Ok(join(all, 1e-9))
    }

    /// Drops chunks older than the horizon as of `analysed_until`; the
    /// frames only they covered become final. Returns the turns finalized.
    fn evict(&mut self, analysed_until: f64) -> Result<Vec<Turn>, ModelError> {
        if self.config.horizon <= 0.0 {
            return Ok(Vec::new());
        }
        let mut finalized = Vec::new();
        while self.kept.front().is_some_and(|k| {
            k.analysis.index as f64 * self.step < analysed_until - self.config.horizon
        }) {
            let until = self
                .kept
                .front()
                .map_or(0.0, |k| self.chunk_end(k.analysis.index))
                .max(self.final_until);
            // A horizon shorter than the chunks of one call: the turns to
            // finalize are not computed yet.
            if until > self.provisional_until {
                self.provisional = self.turns_from(0, self.final_until, until, false)?;
                self.provisional_until = until;
            }
            let Some(old) = self.kept.pop_front() else {
                break;
            };
            finalized.extend(
                cut_before(&self.provisional, until)
                    .into_iter()
                    .filter(|t| t.start >= self.final_until),
            );
            self.provisional = cut_from(&self.provisional, until);
            self.final_until = until;
            self.contribute(&old, -1.0);
            self.archive(&old);
        }
        let finalized = join(finalized, SPLICE_GAP);
        self.finalized.extend(finalized.iter().copied());
        Ok(finalized)
    }
}

/// pyannote's training filter (`clustering::clean_speakers`) for one chunk.
fn clean_speakers(a: &ChunkAnalysis, ratio: f64) -> [bool; LOCAL_SPEAKERS] {
    let clean =
        crate::engine::clustering::clean_speakers(a.activity.view(), a.embeddings.view(), ratio);
    std::array::from_fn(|s| clean.get(s).copied().unwrap_or(false))
}
