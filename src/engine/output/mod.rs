//! From clustered chunks to turns: per-frame speaker counts, reconstruction
//! of the global diarization, turns and RTTM text.

pub mod count;
pub mod diarization;
pub mod reconstruct;
pub mod rttm;
