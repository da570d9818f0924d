//! The diarization engine: pyannote community-1's algorithm, without GStreamer.

pub mod agglomerative;
pub mod ahc;
pub mod analysis;
pub mod assign;
pub mod clustering;
pub mod config;
pub mod count;
pub mod der;
pub mod diarization;
pub mod embedding;
pub mod fbank;
pub mod online;
pub mod pipeline;
pub mod plda;
pub mod plda_fit;
pub mod reconstruct;
pub mod registry;
pub mod rttm;
pub mod segmentation;
pub mod stream;
pub mod vbx;
pub mod wav;
pub mod workers;
