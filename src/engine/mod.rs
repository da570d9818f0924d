//! The diarization engine: pyannote community-1's algorithm, without GStreamer.

pub mod config;
pub mod fbank;
pub mod embedding;
pub mod segmentation;
pub mod analysis;
pub mod plda_fit;
pub mod wav;
pub mod workers;
pub mod count;
pub mod agglomerative;
pub mod ahc;
pub mod plda;
pub mod vbx;
pub mod clustering;
pub mod assign;
pub mod reconstruct;
pub mod rttm;
pub mod der;
pub mod diarization;
pub mod pipeline;
pub mod stream;
