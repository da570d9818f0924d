//! The concurrent inference path: the caller's thread only slices chunks;
//! a segmentation thread (batched) streams decoded chunks into a pool of
//! embedding threads through bounded queues, so both models run at once
//! and a slow consumer pushes back on the producer instead of growing memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use ndarray::{Array2, Axis};

use crate::engine::config::LOCAL_SPEAKERS;
use crate::engine::frontend::chunks::{Analyses, ChunkAnalysis};
use crate::engine::frontend::embedding::{speaker_features, speaker_masks, Embedder};
use crate::engine::frontend::fbank::{Fbank, SlidingLogMel};
use crate::engine::frontend::segmentation::{decode_powerset, Segmenter};
use crate::engine::profile::{self, Stage};
use crate::models::ModelError;

/// A 10 s chunk of 16 kHz audio (zero-padded at the end of the stream).
pub struct ChunkJob {
    pub index: usize,
    /// Absolute sample index of the chunk's first sample.
    pub start: usize,
    pub audio: Arc<[f32]>,
}

struct SegmentedChunk {
    index: usize,
    activity: Array2<f32>,
    /// Log-mel of the whole chunk, not yet mean-normalised.
    log_mel: Array2<f32>,
}

/// State shared between the workers and the stream's owner.
#[derive(Default)]
pub struct Shared {
    pub analyses: Mutex<Analyses>,
    /// The first inference error; workers stop at it and the owner reports it.
    pub error: Mutex<Option<ModelError>>,
    /// Set when the stream is dropped unfinished: queued chunks are skipped
    /// so that tearing down (a state change to NULL) is prompt.
    pub cancelled: AtomicBool,
}

impl Shared {
    fn fail(&self, e: ModelError) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
    }
}

pub fn spawn(
    jobs: Receiver<ChunkJob>,
    segmenter: Arc<Segmenter>,
    embedders: &[Arc<Embedder>],
    shared: Arc<Shared>,
    batch: usize,
    queue: usize,
    max_embedding_frames: usize,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let (seg_tx, seg_rx) = crossbeam_channel::bounded::<SegmentedChunk>(queue);
    let seg_shared = shared.clone();
    let mut threads = vec![std::thread::Builder::new()
        .name("speakrs-segment".into())
        .spawn(move || segmentation_loop(jobs, seg_tx, &segmenter, &seg_shared, batch))?];
    for (i, embedder) in embedders.iter().enumerate() {
        let (rx, embedder, shared) = (seg_rx.clone(), embedder.clone(), shared.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("speakrs-embed{i}"))
                .spawn(move || embedding_loop(rx, &embedder, &shared, max_embedding_frames))?,
        );
    }
    Ok(threads)
}

fn segmentation_loop(
    jobs: Receiver<ChunkJob>,
    out: Sender<SegmentedChunk>,
    segmenter: &Segmenter,
    shared: &Shared,
    batch: usize,
) {
    // Fbank is computed here, where chunks arrive in order, so that the
    // frames overlapping chunks share are computed once.
    let fbank = Fbank::new();
    let mut log_mel = SlidingLogMel::default();
    while let Ok(first) = jobs.recv() {
        if shared.cancelled.load(Ordering::Relaxed) {
            return;
        }
        // Batch whatever is already queued; never wait for a full batch.
        let mut pending = vec![first];
        while pending.len() < batch {
            match jobs.try_recv() {
                Ok(job) => pending.push(job),
                Err(_) => break,
            }
        }
        let audio: Vec<&[f32]> = pending.iter().map(|j| &j.audio[..]).collect();
        let started = profile::start();
        let log_probs = match segmenter.log_probabilities(&audio) {
            Ok(lp) => lp,
            Err(e) => return shared.fail(e),
        };
        profile::record(Stage::Segmentation, started);
        for (job, lp) in pending.into_iter().zip(log_probs.axis_iter(Axis(0))) {
            let started = profile::start();
            let chunk_log_mel = log_mel.chunk(&fbank, job.start, &job.audio);
            profile::record(Stage::Fbank, started);
            let chunk = SegmentedChunk {
                index: job.index,
                activity: decode_powerset(lp),
                log_mel: chunk_log_mel,
            };
            if out.send(chunk).is_err() {
                return;
            }
        }
    }
}

fn embedding_loop(
    chunks: Receiver<SegmentedChunk>,
    embedder: &Embedder,
    shared: &Shared,
    max_frames: usize,
) {
    for chunk in chunks {
        if shared.cancelled.load(Ordering::Relaxed) {
            return;
        }
        match analyse(chunk, embedder, max_frames) {
            Ok(analysis) => shared
                .analyses
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(analysis),
            Err(e) => return shared.fail(e),
        }
        if shared
            .error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
        {
            return;
        }
    }
}

fn analyse(
    chunk: SegmentedChunk,
    embedder: &Embedder,
    max_frames: usize,
) -> Result<ChunkAnalysis, ModelError> {
    let masks = speaker_masks(chunk.activity.view());
    let dimension = embedder.dimension();
    let mut embeddings = Array2::<f32>::from_elem((LOCAL_SPEAKERS, dimension), f32::NAN);
    for (k, feats) in speaker_features(chunk.log_mel, &masks, max_frames)
        .into_iter()
        .enumerate()
    {
        let Some(feats) = feats else { continue };
        if let Some(e) = embedder.embed(feats.view())? {
            if e.len() == dimension {
                embeddings
                    .row_mut(k)
                    .assign(&ndarray::ArrayView1::from(&e[..]));
            }
        }
    }
    Ok(ChunkAnalysis {
        index: chunk.index,
        activity: chunk.activity,
        embeddings,
    })
}
