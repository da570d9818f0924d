//! From audio to per-chunk analyses: log-mel fbank, segmentation-3.0 over
//! 10 s chunks, CAM++ embeddings of each active local speaker, run on the
//! inference threads and handed on in chunk order.

pub mod chunks;
pub mod embedding;
pub mod fbank;
pub mod inference;
pub mod segmentation;
