//! Constants of pyannote's community-1 pipeline (docs/design.md §1–§8).

/// Analysis sample rate: every model here expects 16 kHz mono.
pub const SAMPLE_RATE: u32 = 16_000;
/// Chunk (segmentation window) length: 10 s.
pub const CHUNK_SAMPLES: usize = 160_000;
pub const CHUNK_SECONDS: f64 = 10.0;
/// Segmentation-3.0 output frames per 10 s chunk.
pub const FRAMES_PER_CHUNK: usize = 589;
/// Segmentation frame step (270 samples) and receptive field (991 samples),
/// in seconds.
pub const FRAME_STEP: f64 = 0.016875;
pub const FRAME_DURATION: f64 = 0.0619375;
/// Segmentation-3.0's sinc filterbank: taps of each filter and the stride
/// between its outputs, in samples.
pub const SINC_TAPS: usize = 251;
pub const SINC_STRIDE: usize = 10;
/// Local speakers per chunk and powerset classes of segmentation-3.0.
pub const LOCAL_SPEAKERS: usize = 3;
pub const POWERSET_CLASSES: usize = 7;
/// Fbank frames of a full chunk (25 ms window, 10 ms shift, snip edges).
pub const FBANK_FRAMES_PER_CHUNK: usize = 998;
pub const FBANK_BINS: usize = 80;
pub const FBANK_SHIFT: usize = 160;
pub const FBANK_WINDOW: usize = 400;
/// pyannote's `min_num_samples` for the embedding model: below this many
/// clean frames the full (overlapping) mask is used instead.
pub const MIN_EMBEDDING_SAMPLES: usize = 720;
/// At most this many of a speaker's selected fbank frames (3 s, the middle
/// ones) are embedded per chunk (issue #18): at a 1 s step the chunks of a
/// long turn then embed different 3 s rather than nearly the same 10 s,
/// a third of the CAM++ work, and DER fell on every set (docs/performance.md).
pub const MAX_EMBEDDING_FBANK_FRAMES: usize = 300;
/// Fbank frames per second of audio (10 ms shift).
pub const FBANK_FRAMES_PER_SECOND: usize = SAMPLE_RATE as usize / FBANK_SHIFT;

/// The embedding cap at chunk step `step_seconds`: 3 s, or the step when
/// it is longer, so that the middles of consecutive chunks still cover
/// every second of a long turn. Capped at 3 s, a 4 s step left a quarter
/// of such a turn unembedded and lost up to 3.6 DER points, an 8 s step
/// up to 15.8 (docs/performance.md, *Coarser steps*).
pub fn max_embedding_fbank_frames(step_seconds: f64) -> usize {
    let step_frames = (step_seconds.max(0.0) * FBANK_FRAMES_PER_SECOND as f64).ceil();
    MAX_EMBEDDING_FBANK_FRAMES.max(step_frames as usize)
}
/// CAM++ cannot run on fewer fbank frames than this.
pub const MIN_EMBEDDING_FBANK_FRAMES: usize = 3;
/// Default chunk step (the reference): 1 s.
pub const DEFAULT_STEP_SECONDS: f64 = 1.0;
