//! Test audio: speech excerpts from ../shared/eval, synthetic signals, and
//! their encoding into buffers of any rate / channel count / format.

use std::path::PathBuf;

/// A raw audio format the element accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Format {
    pub rate: u32,
    pub channels: usize,
    pub s16: bool,
}

pub const MONO16K: Format = Format {
    rate: 16_000,
    channels: 1,
    s16: false,
};
pub const MONO16K_S16: Format = Format {
    rate: 16_000,
    channels: 1,
    s16: true,
};
pub const STEREO44K: Format = Format {
    rate: 44_100,
    channels: 2,
    s16: false,
};
pub const SIX48K: Format = Format {
    rate: 48_000,
    channels: 6,
    s16: false,
};

impl Format {
    pub fn caps(&self) -> gst::Caps {
        gst::Caps::builder("audio/x-raw")
            .field("format", if self.s16 { "S16LE" } else { "F32LE" })
            .field("layout", "interleaved")
            .field("rate", self.rate as i32)
            .field("channels", self.channels as i32)
            // Required above 2 channels (5.1 here), as decoders set it.
            .field_if_some(
                "channel-mask",
                (self.channels > 2).then(|| gst::Bitmask::new(0x3f)),
            )
            .build()
    }

    pub fn frame_bytes(&self) -> usize {
        self.channels * if self.s16 { 2 } else { 4 }
    }

    /// Interleaved bytes of 16 kHz mono `audio` in this format (linear
    /// interpolation to the rate: the element's analysis only needs speech
    /// to stay speech; every channel carries the same signal).
    pub fn encode(&self, audio: &[f32]) -> Vec<u8> {
        let frames = (audio.len() as u64 * self.rate as u64 / 16_000) as usize;
        let mut out = Vec::with_capacity(frames * self.frame_bytes());
        for i in 0..frames {
            let x = i as f64 * 16_000.0 / self.rate as f64;
            let (k, frac) = (x.floor() as usize, (x - x.floor()) as f32);
            let a = audio[k.min(audio.len() - 1)];
            let b = audio[(k + 1).min(audio.len() - 1)];
            // frac 0 keeps NaN / ±Inf cases exactly as written.
            let v = if frac == 0.0 { a } else { a + (b - a) * frac };
            for _ in 0..self.channels {
                if self.s16 {
                    out.extend_from_slice(&((v.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes());
                } else {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        out
    }

    /// Nanoseconds of `frames` frames.
    pub fn ns(&self, frames: u64) -> u64 {
        (frames as u128 * 1_000_000_000 / self.rate as u128) as u64
    }

    /// `audio` as buffers of `ms` milliseconds from `start`, with PTS and
    /// duration derived from the frame count (no rounding drift).
    pub fn buffers(&self, audio: &[f32], start: gst::ClockTime, ms: u64) -> Vec<gst::Buffer> {
        let bytes = self.encode(audio);
        let per = ((self.rate as u64 * ms / 1000).max(1) as usize) * self.frame_bytes();
        let mut frames = 0u64;
        bytes
            .chunks(per)
            .map(|piece| {
                let n = (piece.len() / self.frame_bytes()) as u64;
                let mut b = gst::Buffer::from_mut_slice(piece.to_vec());
                let r = b.get_mut().unwrap();
                r.set_pts(start + gst::ClockTime::from_nseconds(self.ns(frames)));
                r.set_duration(gst::ClockTime::from_nseconds(
                    self.ns(frames + n) - self.ns(frames),
                ));
                frames += n;
                b
            })
            .collect()
    }

    /// Hands each of `buffers(audio, start, ms)` to `push`; returns where
    /// the last one ends.
    pub fn push_each(
        &self,
        audio: &[f32],
        start: gst::ClockTime,
        ms: u64,
        mut push: impl FnMut(gst::Buffer),
    ) -> gst::ClockTime {
        let mut end = start;
        for b in self.buffers(audio, start, ms) {
            end = b.pts().unwrap() + b.duration().unwrap();
            push(b);
        }
        end
    }
}

pub fn eval(rel: &str) -> PathBuf {
    super::super::common::shared().join("eval").join(rel)
}

/// 16 kHz mono samples of an eval WAV.
pub fn wav(rel: &str) -> Vec<f32> {
    let path = eval(rel);
    let reader =
        hound::WavReader::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reader
        .into_samples::<i16>()
        .map(|s| s.unwrap() as f32 / 32768.0)
        .collect()
}

/// `secs` seconds of two-speaker speech (sample.wav from 6.5 s: speech
/// throughout, per its RTTM), looped if longer than what the file has.
pub fn speech(secs: f64) -> Vec<f32> {
    let all = wav("real/wav/sample.wav");
    let part = &all[6 * 16_000 + 8_000..];
    part.iter()
        .cycle()
        .take((secs * 16_000.0) as usize)
        .copied()
        .collect()
}

pub fn constant(secs: f64, v: f32) -> Vec<f32> {
    vec![v; (secs * 16_000.0) as usize]
}

pub fn tone(secs: f64, hz: f64, amplitude: f32) -> Vec<f32> {
    (0..(secs * 16_000.0) as usize)
        .map(|i| amplitude * (2.0 * std::f64::consts::PI * hz * i as f64 / 16_000.0).sin() as f32)
        .collect()
}

/// Full-scale square wave (clipped sine).
pub fn square(secs: f64, hz: f64) -> Vec<f32> {
    tone(secs, hz, 1.0)
        .into_iter()
        .map(|v| if v >= 0.0 { 1.0 } else { -1.0 })
        .collect()
}

/// Deterministic white noise in [-amplitude, amplitude] (xorshift).
pub fn noise(secs: f64, amplitude: f32) -> Vec<f32> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..(secs * 16_000.0) as usize)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            amplitude * ((x >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
        })
        .collect()
}

pub fn secs(s: f64) -> gst::ClockTime {
    gst::ClockTime::from_nseconds((s * 1e9).round() as u64)
}
