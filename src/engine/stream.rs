//! The streaming engine: push 16 kHz audio in pieces of any size, cluster on
//! demand, `finish` for the final turns. `diarize` (offline) is the same
//! path fed all at once.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, TrySendError};

use crate::engine::config::{
    max_embedding_fbank_frames, CHUNK_SAMPLES, DEFAULT_STEP_SECONDS, SAMPLE_RATE,
};
use crate::engine::frontend::chunks::ChunkAnalysis;
use crate::engine::frontend::inference::{self, ChunkJob, Shared};
use crate::engine::loaded::LoadedModels;
use crate::engine::online::{Online, OnlineConfig, Update};
use crate::engine::output::diarization::Diarization;
use crate::engine::registry::Registry;
use crate::models::ModelError;

/// Streaming settings; the models come loaded in a [`LoadedModels`].
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Chunk step in seconds (1 s is the reference; larger is faster).
    pub step_seconds: f64,
    /// Chunks segmented per model call, at most. On CPU 4 is as fast per
    /// chunk as larger batches, and every inference thread's segmentation
    /// session keeps a batch's activations.
    pub batch: usize,
    /// Chunks that may wait in each queue before `push` blocks.
    pub queue: usize,
    /// Re-clustering and horizon (live streams); the default clusters once, at the end.
    pub online: OnlineConfig,
    /// Live streams: when the inference queue is full, skip the chunk
    /// (a coarser step for as long as inference lags) instead of blocking.
    pub skip_when_busy: bool,
    /// With `skip_when_busy`: seconds of audio the analysis may fall
    /// behind before chunks are skipped (the queues are sized to it).
    pub lag_budget_seconds: f64,
    /// Fbank frames of a speaker embedded per chunk at most (the middle
    /// ones); `Some(usize::MAX)` embeds them all, as pyannote does. `None`:
    /// see [`StreamConfig::embedding_frames`].
    pub max_embedding_frames: Option<usize>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            step_seconds: DEFAULT_STEP_SECONDS,
            batch: 4,
            queue: 16,
            online: OnlineConfig::default(),
            skip_when_busy: false,
            lag_budget_seconds: 10.0,
            max_embedding_frames: None,
        }
    }
}

impl StreamConfig {
    /// The embedding cap in use: the one set, else 3 s or the step
    /// ([`max_embedding_fbank_frames`]) when clustering once at the end, and
    /// every frame when re-clustering while streaming. There each new
    /// chunk is labelled by its own embeddings, which whole-chunk
    /// embeddings make steadier: with the cap, live labels on a continuous
    /// stream were 2.6 points worse than EOS instead of 0.7
    /// (docs/performance.md), while one clustering of everything gains
    /// from the cap on every set. (The element sets it: capped unless its
    /// labels are watched live, whatever its re-clustering interval.)
    pub fn embedding_frames(&self) -> usize {
        self.max_embedding_frames
            .unwrap_or(if self.online.cluster_interval > 0.0 {
                usize::MAX
            } else {
                max_embedding_fbank_frames(self.step_seconds)
            })
    }

    /// The configuration for labels watched as the audio plays (held
    /// buffers, a live source): re-clustered after every early chunk and
    /// embedded from every frame (see [`StreamConfig::embedding_frames`]).
    pub fn watched_live(self) -> Self {
        Self {
            online: OnlineConfig {
                watched: true,
                ..self.online
            },
            max_embedding_frames: Some(usize::MAX),
            ..self
        }
    }

    /// Chunks each of the two inference queues may hold. A live stream
    /// keeps its queued audio to half the lag budget (with chunks in the
    /// models, the analysis then stays within it); left larger, the queues
    /// took tens of seconds of audio before anything was skipped, and
    /// every label came after its buffer had left.
    pub fn queue_length(&self) -> usize {
        let queue = self.queue.max(1);
        if !self.skip_when_busy {
            return queue;
        }
        let step = self.step_seconds.max(0.01);
        let fits = (self.lag_budget_seconds / step / 4.0).floor() as usize;
        fits.clamp(1, queue)
    }
}

pub struct StreamingDiarizer {
    models: LoadedModels,
    step: usize,
    /// Audio from `buffer_start` (absolute sample index) onwards.
    buffer: Vec<f32>,
    buffer_start: usize,
    total_samples: usize,
    next_chunk: usize,
    skip_when_busy: bool,
    skipped_chunks: u64,
    dimension: usize,
    jobs: Option<Sender<ChunkJob>>,
    workers: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
    online: Online,
}

impl StreamingDiarizer {
    pub fn new(models: LoadedModels, config: &StreamConfig) -> Result<Self, ModelError> {
        Self::with_registry(models, config, Registry::default())
    }

    /// A stream that keeps the labels of the speakers `registry` knows.
    pub fn with_registry(
        models: LoadedModels,
        config: &StreamConfig,
        registry: Registry,
    ) -> Result<Self, ModelError> {
        let step =
            ((config.step_seconds * SAMPLE_RATE as f64).round() as usize).clamp(160, CHUNK_SAMPLES);
        let shared = Arc::new(Shared::default());
        let queue = config.queue_length();
        let (jobs, rx) = crossbeam_channel::bounded(queue);
        let workers = inference::spawn(
            rx,
            &models.segmenters,
            &models.embedders,
            shared.clone(),
            config.batch.max(1),
            queue,
            config.embedding_frames(),
        )
        .map_err(|e| ModelError::Inference(format!("cannot start inference threads: {e}")))?;
        let online = Online::new(
            step as f64 / SAMPLE_RATE as f64,
            config.online.clone(),
            &models,
            registry,
        );
        let dimension = models.embedders.first().map_or(0, |e| e.dimension());
        Ok(Self {
            models,
            step,
            buffer: Vec::new(),
            buffer_start: 0,
            total_samples: 0,
            next_chunk: 0,
            skip_when_busy: config.skip_when_busy,
            skipped_chunks: 0,
            dimension,
            jobs: Some(jobs),
            workers,
            shared,
            online,
        })
    }

    pub fn step_seconds(&self) -> f64 {
        self.step as f64 / SAMPLE_RATE as f64
    }

    /// Samples pushed so far.
    pub fn total_samples(&self) -> usize {
        self.total_samples
    }

    /// Chunks held for re-clustering (see `OnlineConfig::horizon`).
    pub fn kept_chunks(&self) -> usize {
        self.online.kept_chunks()
    }

    /// Chunks skipped because inference was busy (`skip_when_busy`).
    pub fn skipped_chunks(&self) -> u64 {
        self.skipped_chunks
    }

    /// Appends audio; blocks while the inference queues are full (unless
    /// `skip_when_busy`).
    pub fn push(&mut self, samples: &[f32]) -> Result<(), ModelError> {
        self.check_error()?;
        // Non-finite samples would poison every model output of the chunk: silence them.
        self.buffer.extend(samples.iter().map(|&s| {
            if s.is_finite() {
                s.clamp(-1.0, 1.0)
            } else {
                0.0
            }
        }));
        self.total_samples += samples.len();
        while self.next_chunk * self.step + CHUNK_SAMPLES <= self.total_samples {
            let start = self.next_chunk * self.step - self.buffer_start;
            let audio: Arc<[f32]> = self.buffer[start..start + CHUNK_SAMPLES].into();
            self.send(audio)?;
        }
        // Keep only what the next chunk still needs.
        let keep_from = (self.next_chunk * self.step).min(self.total_samples);
        if keep_from > self.buffer_start {
            self.buffer.drain(..keep_from - self.buffer_start);
            self.buffer_start = keep_from;
        }
        Ok(())
    }

    fn send(&mut self, audio: Arc<[f32]>) -> Result<(), ModelError> {
        let index = self.next_chunk;
        let job = ChunkJob {
            index,
            start: index * self.step,
            audio,
        };
        self.next_chunk += 1;
        let Some(tx) = &self.jobs else {
            return Err(self.stopped());
        };
        let sent = if self.skip_when_busy {
            match tx.try_send(job) {
                Err(TrySendError::Full(_)) => {
                    self.skipped_chunks += 1;
                    self.shared
                        .analyses
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(ChunkAnalysis::skipped(index, self.dimension));
                    Ok(())
                }
                other => other.map_err(|_| ()),
            }
        } else {
            tx.send(job).map_err(|_| ())
        };
        sent.map_err(|_| self.stopped())
    }

    fn stopped(&self) -> ModelError {
        self.take_error()
            .unwrap_or_else(|| ModelError::Inference("inference threads stopped".into()))
    }

    /// Seconds of audio the analysed chunks cover.
    fn analysed_until(&self, chunks: usize) -> f64 {
        let samples = if chunks == 0 {
            0
        } else {
            ((chunks - 1) * self.step + CHUNK_SAMPLES).min(self.total_samples)
        };
        samples as f64 / SAMPLE_RATE as f64
    }

    /// Takes what the workers have analysed; with re-clustering on
    /// (`OnlineConfig::cluster_interval` > 0) returns the new turns.
    pub fn poll(&mut self) -> Result<Option<Update>, ModelError> {
        self.check_error()?;
        let ready = self.take_ready();
        let Some(last) = ready.last().map(|a| a.index) else {
            return Ok(None);
        };
        let until = self.analysed_until(last + 1);
        self.online.add(ready, until, &self.models)
    }

    /// Analyses the tail (a zero-padded last chunk, as pyannote does), waits
    /// for the workers and clusters everything kept.
    pub fn finish(self) -> Result<Diarization, ModelError> {
        self.finish_with_registry().map(|(d, _)| d)
    }

    /// `finish`, also returning the speakers met, for a following stream.
    pub fn finish_with_registry(mut self) -> Result<(Diarization, Registry), ModelError> {
        let ready = self.analyse_to_the_end()?;
        let duration = self.total_samples as f64 / SAMPLE_RATE as f64;
        self.online.add(ready, duration, &self.models)?;
        let turns = self.online.finish(duration, &self.models)?;
        let mut diarization = Diarization::new(turns, duration);
        diarization.identities = self.online.identities().cloned();
        let registry = self.online.take_registry();
        Ok((diarization, registry))
    }

    /// The analyses of every chunk not yet polled, the tail included, for
    /// a caller that wants the segmentation and embeddings themselves
    /// (enrolling a voice), not turns.
    pub fn finish_analyses(mut self) -> Result<Vec<ChunkAnalysis>, ModelError> {
        self.analyse_to_the_end()
    }

    /// Sends the tail, waits for the workers, and takes what is left.
    fn analyse_to_the_end(&mut self) -> Result<Vec<ChunkAnalysis>, ModelError> {
        let covered = if self.next_chunk == 0 {
            0
        } else {
            (self.next_chunk - 1) * self.step + CHUNK_SAMPLES
        };
        if self.total_samples > 0 && (self.next_chunk == 0 || covered < self.total_samples) {
            let start = self.next_chunk * self.step - self.buffer_start;
            let mut audio = self.buffer[start.min(self.buffer.len())..].to_vec();
            audio.resize(CHUNK_SAMPLES, 0.0);
            self.skip_when_busy = false; // the tail is always analysed
            self.send(audio.into())?;
        }
        self.join();
        self.check_error()?;
        Ok(self.take_ready())
    }

    /// Stops the stream unfinished (a flush); returns the speakers met.
    pub fn into_registry(mut self) -> Registry {
        self.shared
            .cancelled
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.join();
        let ready = self.take_ready();
        let until = self.analysed_until(ready.last().map_or(0, |a| a.index + 1));
        let _ = self.online.add(ready, until, &self.models);
        self.online.take_registry()
    }

    /// The chunks the workers finished, in order, out of the shared buffer.
    fn take_ready(&self) -> Vec<ChunkAnalysis> {
        self.shared
            .analyses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take_ready()
    }

    fn join(&mut self) {
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }

    fn check_error(&self) -> Result<(), ModelError> {
        match self.take_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn take_error(&self) -> Option<ModelError> {
        self.shared
            .error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

impl Drop for StreamingDiarizer {
    /// Cancelling skips queued work, closing the job queue ends the workers,
    /// and joining leaves no thread behind. (`finish` joins first, so this
    /// cancels nothing it still needs.)
    fn drop(&mut self) {
        self.shared
            .cancelled
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.join();
    }
}

/// Offline diarization of a whole recording: the streaming path, fed at once.
pub fn diarize(
    models: LoadedModels,
    config: &StreamConfig,
    samples: &[f32],
) -> Result<Diarization, ModelError> {
    let mut stream = StreamingDiarizer::new(models, config)?;
    stream.push(samples)?;
    stream.finish()
}
