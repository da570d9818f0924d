//! gst-speakrs: speaker diarization for GStreamer pipelines.
//!
//! Three layers, dependencies pointing one way: `element` (GStreamer glue)
//! → `engine` (16 kHz samples in, speaker turns out) → `models` (files,
//! checksums, ONNX Runtime sessions).

pub mod engine;
pub mod models;
