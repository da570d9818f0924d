//! The concurrent inference path: the caller's thread only slices chunks;
//! a pool of workers, one per inference thread, each with its own
//! segmentation and embedding sessions, segments chunks in batches and
//! embeds the segmented ones, embedding first. Either model may then use
//! every core: with one segmentation thread, segmentation alone set the
//! wall time of short files once embeddings had become cheaper. Bounded
//! queues make a slow consumer push back on the producer instead of
//! growing memory.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
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

    fn stopped(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
            || self
                .error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some()
    }
}

/// What a stream's workers share besides the queues.
struct Pool {
    shared: Arc<Shared>,
    /// Fbank frames shared by overlapping chunks are computed once: chunks
    /// mostly reach it in order, and one out of order is computed whole.
    log_mel: Mutex<SlidingLogMel>,
    fbank: Fbank,
    /// Batches being segmented: a worker leaves only when none is, so the
    /// last chunks are embedded by every worker.
    segmenting: AtomicUsize,
    batch: usize,
    max_embedding_frames: usize,
}

/// Starts one worker per embedder; worker i segments with
/// `segmenters[i % segmenters.len()]`.
pub fn spawn(
    jobs: Receiver<ChunkJob>,
    segmenters: &[Arc<Segmenter>],
    embedders: &[Arc<Embedder>],
    shared: Arc<Shared>,
    batch: usize,
    queue: usize,
    max_embedding_frames: usize,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    if segmenters.is_empty() {
        return Err(std::io::Error::other("no segmentation session"));
    }
    let (segmented_tx, segmented_rx) = crossbeam_channel::bounded::<SegmentedChunk>(queue);
    let pool = Arc::new(Pool {
        shared,
        log_mel: Mutex::new(SlidingLogMel::default()),
        fbank: Fbank::new(),
        segmenting: AtomicUsize::new(0),
        batch: batch.max(1),
        max_embedding_frames,
    });
    embedders
        .iter()
        .enumerate()
        .map(|(i, embedder)| {
            let worker = Worker {
                jobs: jobs.clone(),
                segmented_tx: segmented_tx.clone(),
                segmented_rx: segmented_rx.clone(),
                segmenter: segmenters[i % segmenters.len()].clone(),
                embedder: embedder.clone(),
                pool: pool.clone(),
            };
            std::thread::Builder::new()
                .name(format!("speakrs-infer{i}"))
                .spawn(move || worker.run())
        })
        .collect()
}

struct Worker {
    jobs: Receiver<ChunkJob>,
    segmented_tx: Sender<SegmentedChunk>,
    segmented_rx: Receiver<SegmentedChunk>,
    segmenter: Arc<Segmenter>,
    embedder: Arc<Embedder>,
    pool: Arc<Pool>,
}

impl Worker {
    fn run(self) {
        while !self.pool.shared.stopped() {
            // Embedding first: it drains the queue that segmentation fills.
            if let Ok(chunk) = self.segmented_rx.try_recv() {
                self.embed(chunk);
                continue;
            }
            match self.jobs.try_recv() {
                Ok(job) => self.segment(job),
                Err(TryRecvError::Empty) => {
                    crossbeam_channel::select! {
                        recv(self.segmented_rx) -> chunk => {
                            if let Ok(chunk) = chunk { self.embed(chunk) }
                        }
                        recv(self.jobs) -> job => {
                            if let Ok(job) = job { self.segment(job) }
                        }
                    }
                }
                // No more audio: help with what is segmented until no
                // worker is segmenting any more.
                Err(TryRecvError::Disconnected) => {
                    match self.segmented_rx.recv_timeout(Duration::from_millis(5)) {
                        Ok(chunk) => self.embed(chunk),
                        Err(_) if self.pool.segmenting.load(Ordering::Acquire) == 0 => {
                            if self.segmented_rx.is_empty() {
                                return;
                            }
                        }
                        Err(_) => {}
                    }
                }
            }
        }
    }

    /// Segments `first` and whatever else is queued (never waiting for a
    /// full batch), then queues the chunks for embedding, embedding here
    /// those the queue has no room for.
    fn segment(&self, first: ChunkJob) {
        let pool = &self.pool;
        pool.segmenting.fetch_add(1, Ordering::AcqRel);
        let mut pending = vec![first];
        while pending.len() < pool.batch {
            match self.jobs.try_recv() {
                Ok(job) => pending.push(job),
                Err(_) => break,
            }
        }
        let audio: Vec<(usize, &[f32])> = pending.iter().map(|j| (j.start, &j.audio[..])).collect();
        let started = profile::start();
        let log_probs = self.segmenter.log_probabilities_at(&audio);
        profile::record(Stage::Segmentation, started);
        let mut own = Vec::new();
        match log_probs {
            Ok(log_probs) => {
                for (job, lp) in pending.iter().zip(log_probs.axis_iter(Axis(0))) {
                    let started = profile::start();
                    let log_mel = pool
                        .log_mel
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .chunk(&pool.fbank, job.start, &job.audio);
                    profile::record(Stage::Fbank, started);
                    let chunk = SegmentedChunk {
                        index: job.index,
                        activity: decode_powerset(lp),
                        log_mel,
                    };
                    match self.segmented_tx.try_send(chunk) {
                        Ok(()) => {}
                        Err(TrySendError::Full(chunk) | TrySendError::Disconnected(chunk)) => {
                            own.push(chunk)
                        }
                    }
                }
            }
            Err(e) => pool.shared.fail(e),
        }
        pool.segmenting.fetch_sub(1, Ordering::AcqRel);
        for chunk in own {
            self.embed(chunk);
        }
    }

    fn embed(&self, chunk: SegmentedChunk) {
        let shared = &self.pool.shared;
        if shared.stopped() {
            return;
        }
        match analyse(chunk, &self.embedder, self.pool.max_embedding_frames) {
            Ok(analysis) => shared
                .analyses
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(analysis),
            Err(e) => shared.fail(e),
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
