//! The streaming engine: push 16 kHz audio in pieces of any size, cluster on
//! demand, `finish` for the final turns. `diarize` (offline) is the same
//! path fed all at once.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use super::config::{CHUNK_SAMPLES, DEFAULT_STEP_SECONDS, SAMPLE_RATE};
use super::diarization::{cluster_analyses, Diarization};
use super::pipeline::Pipeline;
use super::workers::{self, ChunkJob, Shared};
use crate::models::ModelError;

/// Streaming settings; the models come loaded in a [`Pipeline`].
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Chunk step in seconds (1 s is the reference; larger is faster).
    pub step_seconds: f64,
    /// Chunks segmented per model call.
    pub batch: usize,
    /// Chunks that may wait in each queue before `push` blocks.
    pub queue: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self { step_seconds: DEFAULT_STEP_SECONDS, batch: 8, queue: 16 }
    }
}

pub struct StreamingDiarizer {
    pipeline: Pipeline,
    step: usize,
    /// Audio from `buffer_start` (absolute sample index) onwards.
    buffer: Vec<f32>,
    buffer_start: usize,
    total_samples: usize,
    next_chunk: usize,
    jobs: Option<Sender<ChunkJob>>,
    workers: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl StreamingDiarizer {
    pub fn new(pipeline: Pipeline, config: &StreamConfig) -> Result<Self, ModelError> {
        let step = ((config.step_seconds * SAMPLE_RATE as f64).round() as usize).clamp(160, CHUNK_SAMPLES);
        let shared = Arc::new(Shared::default());
        let (jobs, rx) = crossbeam_channel::bounded(config.queue.max(1));
        let workers = workers::spawn(
            rx,
            pipeline.segmenter.clone(),
            &pipeline.embedders,
            shared.clone(),
            config.batch.max(1),
            config.queue.max(1),
        )
        .map_err(|e| ModelError::Inference(format!("cannot start inference threads: {e}")))?;
        Ok(Self {
            pipeline,
            step,
            buffer: Vec::new(),
            buffer_start: 0,
            total_samples: 0,
            next_chunk: 0,
            jobs: Some(jobs),
            workers,
            shared,
        })
    }

    pub fn step_seconds(&self) -> f64 {
        self.step as f64 / SAMPLE_RATE as f64
    }

    /// Samples pushed so far.
    pub fn total_samples(&self) -> usize {
        self.total_samples
    }

    /// Appends audio; blocks while the inference queues are full.
    pub fn push(&mut self, samples: &[f32]) -> Result<(), ModelError> {
        self.check_error()?;
        // Non-finite samples would poison every model output of the chunk: silence them.
        self.buffer.extend(samples.iter().map(|&s| if s.is_finite() { s.clamp(-1.0, 1.0) } else { 0.0 }));
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
        let job = ChunkJob { index: self.next_chunk, start: self.next_chunk * self.step, audio };
        self.next_chunk += 1;
        match &self.jobs {
            Some(tx) if tx.send(job).is_ok() => Ok(()),
            _ => Err(self.take_error().unwrap_or_else(|| ModelError::Inference("inference threads stopped".into()))),
        }
    }

    /// Clusters what has been analysed so far (turns up to the last analysed chunk).
    pub fn cluster(&self) -> Result<Diarization, ModelError> {
        self.check_error()?;
        let analyses = self.shared.analyses.lock().unwrap_or_else(|p| p.into_inner());
        let analysed = if analyses.is_empty() {
            0
        } else {
            ((analyses.len() - 1) * self.step + CHUNK_SAMPLES).min(self.total_samples)
        };
        cluster_analyses(&analyses, self.step_seconds(), analysed as f64 / SAMPLE_RATE as f64, &self.pipeline)
    }

    /// Analyses the tail (a zero-padded last chunk, as pyannote does), waits
    /// for the workers and clusters everything.
    pub fn finish(mut self) -> Result<Diarization, ModelError> {
        let covered = if self.next_chunk == 0 { 0 } else { (self.next_chunk - 1) * self.step + CHUNK_SAMPLES };
        if self.total_samples > 0 && (self.next_chunk == 0 || covered < self.total_samples) {
            let start = self.next_chunk * self.step - self.buffer_start;
            let mut audio = self.buffer[start.min(self.buffer.len())..].to_vec();
            audio.resize(CHUNK_SAMPLES, 0.0);
            self.send(audio.into())?;
        }
        self.join();
        self.check_error()?;
        let analyses = self.shared.analyses.lock().unwrap_or_else(|p| p.into_inner());
        cluster_analyses(&analyses, self.step_seconds(), self.total_samples as f64 / SAMPLE_RATE as f64, &self.pipeline)
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
        self.shared.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl Drop for StreamingDiarizer {
    /// Cancelling skips queued work, closing the job queue ends the workers,
    /// and joining leaves no thread behind. (`finish` joins first, so this
    /// cancels nothing it still needs.)
    fn drop(&mut self) {
        self.shared.cancelled.store(true, std::sync::atomic::Ordering::Relaxed);
        self.join();
    }
}

/// Offline diarization of a whole recording: the streaming path, fed at once.
pub fn diarize(pipeline: Pipeline, config: &StreamConfig, samples: &[f32]) -> Result<Diarization, ModelError> {
    let mut stream = StreamingDiarizer::new(pipeline, config)?;
    stream.push(samples)?;
    stream.finish()
}
