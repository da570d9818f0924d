//! The diarization engine: pyannote community-1's algorithm, without
//! GStreamer. 16 kHz samples in, speaker turns out; the folders are the
//! stages a chunk goes through, in order.
//!
//! - `config`: every constant of the algorithm (sample rate, chunk, frames).
//! - `loaded`: the models and settings a stream runs with ([`loaded::LoadedModels`]).
//! - `stream`: the stream's owner, [`stream::StreamingDiarizer`], and
//!   [`stream::diarize`] for a whole file.
//! - `frontend/`: fbank, segmentation, embeddings and the inference threads
//!   that turn audio into per-chunk analyses.
//! - `clustering/`: PLDA + VBx (or AHC) over the analyses, and the
//!   assignment of local speakers to clusters.
//! - `online/`: what a live stream adds: the horizon, re-clustering
//!   schedule, immediate labels, returning speakers.
//! - `registry/`: speakers known to a stream and their stable labels.
//! - `output/`: speaker counts, reconstruction into turns, RTTM.

pub mod config;
pub mod loaded;
pub mod profile;
pub mod stream;

pub mod clustering;
pub mod frontend;
pub mod online;
pub mod output;
pub mod registry;
