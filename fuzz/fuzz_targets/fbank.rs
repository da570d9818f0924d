//! The engine's pure front end: log-mel fbank of random 16 kHz audio, and
//! the sliding variant (frames shared between overlapping chunks are copied,
//! not recomputed) must give bit-identical results to computing afresh.
#![no_main]

use arbitrary::Arbitrary;
use gstspeakrs::engine::frontend::fbank::{Fbank, SlidingLogMel};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    /// Raw f32 (NaN, Inf, huge) or S16-scaled samples.
    raw: bool,
    samples: Vec<u8>,
    /// The stream repeats `samples` up to this length.
    len: u16,
    /// Windows (start, length) of the stream, in sample units.
    chunks: Vec<(u16, u16)>,
}

fuzz_target!(|input: Input| {
    let base: Vec<f32> = if input.raw {
        input.samples.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    } else {
        input.samples.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0).collect()
    };
    if base.is_empty() {
        return;
    }
    let stream: Vec<f32> = base.iter().copied().cycle().take(base.len().max(input.len as usize)).collect();
    let fbank = Fbank::new();
    let feats = fbank.compute(&stream);
    assert_eq!(feats.dim(), (Fbank::num_frames(stream.len()), 80));
    let mut sliding = SlidingLogMel::default();
    for &(start, len) in input.chunks.iter().take(16) {
        let start = start as usize % stream.len();
        let end = (start + len as usize).min(stream.len());
        let window = &stream[start..end];
        let got = sliding.chunk(&fbank, start, window);
        let want = fbank.log_mel(window);
        assert_eq!(got.dim(), want.dim());
        // Bitwise, so that NaN from raw input compares too.
        assert!(got.iter().zip(want.iter()).all(|(a, b)| a.to_bits() == b.to_bits()), "sliding fbank differs at start {start}");
    }
});
