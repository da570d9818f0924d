//! Analysis path input: interleaved F32LE/S16LE at any rate and channel count
//! → 16 kHz mono f32. Users put no `audioresample` in front of the element,
//! so this must be a real band-limited resampler (rubato), not interpolation.
//!
//! The output stays sample-accurate against the input: the resampler's
//! delay is dropped at the start and `drain` pads the tail so that exactly
//! round(frames · 16000 / rate) samples come out. Timestamps derived from the
//! output sample count therefore stay right across discontinuities.

use std::collections::BTreeMap;
use std::sync::Mutex;

use rubato::{
    Resampler, SincFixedIn, SincInterpolationParameters, SincInterpolationType, WindowFunction,
};

use crate::engine::config::SAMPLE_RATE;

const OUT_RATE: u64 = SAMPLE_RATE as u64;
/// Input frames per resampler call: ~20 ms at 48 kHz.
const CHUNK: usize = 1024;
/// Below this input rate there is no speech band to analyse: feed silence.
const MIN_RATE: u32 = 100;

/// Measured resampler delays by input rate: measuring takes up to ~0.2 s
/// (at the lowest rates), and caps are set again at every renegotiation.
static DELAYS: Mutex<BTreeMap<u32, usize>> = Mutex::new(BTreeMap::new());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    F32,
    S16,
}

pub struct Downsampler {
    rate: u32,
    channels: usize,
    format: SampleFormat,
    inner: Option<SincFixedIn<f32>>,
    /// The resampler's delay in output samples (measured once, in `new`).
    delay: usize,
    /// Mono frames waiting for a full resampler chunk.
    pending: Vec<f32>,
    /// Leading output samples still to drop (the resampler's delay).
    delay_left: usize,
    /// Input frames and output samples since the last reset.
    in_frames: u64,
    out_samples: u64,
}

impl Downsampler {
    pub fn new(rate: u32, channels: usize, format: SampleFormat) -> Self {
        let (inner, delay) = Self::make_resampler(rate).unzip();
        let mut d = Self {
            rate,
            channels: channels.max(1),
            format,
            inner,
            delay: delay.unwrap_or(0),
            pending: Vec::new(),
            delay_left: 0,
            in_frames: 0,
            out_samples: 0,
        };
        d.reset();
        d
    }

    /// The resampler for `rate` and its delay in output samples.
    ///
    /// A 256-tap sinc (cutoff 0.95 of 8 kHz, cubic interpolation) rather than
    /// rubato's FFT resampler: on the eval set the segmentation model's
    /// output through the FFT resampler's block processing drifted from the
    /// 16 kHz original (speech/non-speech agreement 0.94 on AMI trn03), the
    /// sinc's did not (0.999), at a cost that is negligible next to inference.
    fn make_resampler(rate: u32) -> Option<(SincFixedIn<f32>, usize)> {
        if rate as u64 == OUT_RATE || rate < MIN_RATE {
            return None;
        }
        let ratio = OUT_RATE as f64 / rate as f64;
        let params = SincInterpolationParameters {
            sinc_len: 256,
            f_cutoff: 0.95,
            oversampling_factor: 256,
            interpolation: SincInterpolationType::Cubic,
            window: WindowFunction::BlackmanHarris2,
        };
        let mut resampler = SincFixedIn::<f32>::new(ratio, 1.0, params, CHUNK, 1).ok()?;
        let cached = DELAYS.lock().ok().and_then(|d| d.get(&rate).copied());
        let delay = match cached {
            Some(delay) => delay,
            None => {
                let delay = Self::measure_delay(&mut resampler, ratio)?;
                // rubato's reset restores a fresh resampler's state.
                resampler.reset();
                if let Ok(mut d) = DELAYS.lock() {
                    d.insert(rate, delay);
                }
                delay
            }
        };
        Some((resampler, delay))
    }

    /// The resampler's delay in output samples, from its impulse response.
    fn measure_delay(probe: &mut SincFixedIn<f32>, ratio: f64) -> Option<usize> {
        // rubato 0.16's sinc `output_delay()` does not match what it does
        // (it is near 0): measure it with an impulse instead.
        let mut input = vec![0.0f32; CHUNK];
        input[CHUNK / 2] = 1.0;
        let mut response = probe.process(&[input], None).ok()?.swap_remove(0);
        for _ in 0..4 {
            response.extend(
                probe
                    .process_partial(None::<&[Vec<f32>]>, None)
                    .ok()?
                    .swap_remove(0),
            );
        }
        let i = response
            .iter()
            .enumerate()
            .fold((0, 0f32), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
            .0;
        // Parabolic interpolation of the peak: sub-sample accurate.
        let y = |k: usize| response.get(k).copied().unwrap_or(0.0) as f64;
        let (a, b, c) = (y(i.saturating_sub(1)), y(i), y(i + 1));
        let curvature = a - 2.0 * b + c;
        let peak = i as f64
            + if curvature.abs() > 1e-12 {
                0.5 * (a - c) / curvature
            } else {
                0.0
            };
        Some((peak - (CHUNK / 2) as f64 * ratio).round().max(0.0) as usize)
    }

    /// Forgets all state: the next input starts a new, independent stretch.
    /// Runs at every discontinuity, so it resets the resampler in place.
    pub fn reset(&mut self) {
        if let Some(inner) = self.inner.as_mut() {
            inner.reset();
        }
        self.delay_left = self.delay;
        self.pending.clear();
        self.in_frames = 0;
        self.out_samples = 0;
    }

    /// Input frames since the last reset (for timestamp bookkeeping).
    pub fn in_frames(&self) -> u64 {
        self.in_frames
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Why audio at this rate cannot be resampled to 16 kHz, if it cannot:
    /// such audio still passes, but is analysed as silence.
    pub fn unanalysable(&self) -> Option<String> {
        if self.inner.is_some() || self.rate as u64 == OUT_RATE {
            return None;
        }
        let why = if self.rate < MIN_RATE {
            format!("below {MIN_RATE} Hz there is no speech band to analyse")
        } else {
            format!("the resampler to {OUT_RATE} Hz cannot be set up for it")
        };
        Some(format!(
            "Audio at {} Hz cannot be analysed ({why}): it passes through unchanged but is analysed as silence",
            self.rate
        ))
    }

    /// Output samples `frames` input frames correspond to.
    fn expected(&self, frames: u64) -> u64 {
        (frames as u128 * OUT_RATE as u128 + self.rate as u128 / 2)
            .checked_div(self.rate as u128)
            .unwrap_or(0) as u64
    }

    /// Downmixes interleaved bytes and appends the 16 kHz result to `out`.
    pub fn push_bytes(&mut self, data: &[u8], out: &mut Vec<f32>) {
        let width = match self.format {
            SampleFormat::F32 => 4,
            SampleFormat::S16 => 2,
        };
        let frame_bytes = width * self.channels;
        let scale = 1.0 / self.channels as f32;
        let mono = data.chunks_exact(frame_bytes).map(|frame| {
            let sum: f32 = frame
                .chunks_exact(width)
                .map(|s| match self.format {
                    SampleFormat::F32 => f32::from_le_bytes([s[0], s[1], s[2], s[3]]),
                    SampleFormat::S16 => i16::from_le_bytes([s[0], s[1]]) as f32 / 32768.0,
                })
                .sum();
            // One NaN/Inf would smear over a whole FFT block: zero it here.
            let v = sum * scale;
            if v.is_finite() {
                v
            } else {
                0.0
            }
        });
        let mono: Vec<f32> = mono.collect();
        self.push_mono(&mono, out);
    }

    fn push_mono(&mut self, mono: &[f32], out: &mut Vec<f32>) {
        self.in_frames += mono.len() as u64;
        let Some(inner) = self.inner.as_mut() else {
            // 16 kHz input passes as is; unusable rates become silence of the right length.
            let target = self.expected(self.in_frames);
            if self.rate as u64 == OUT_RATE {
                out.extend_from_slice(mono);
            } else {
                out.resize(out.len() + (target - self.out_samples) as usize, 0.0);
            }
            self.out_samples = target;
            return;
        };
        self.pending.extend_from_slice(mono);
        let mut offset = 0;
        while self.pending.len() - offset >= inner.input_frames_next() {
            let n = inner.input_frames_next();
            let input = vec![self.pending[offset..offset + n].to_vec()];
            offset += n;
            match inner.process(&input, None) {
                Ok(res) => {
                    let produced = &res[0];
                    let skip = self.delay_left.min(produced.len());
                    self.delay_left -= skip;
                    out.extend_from_slice(&produced[skip..]);
                    self.out_samples += (produced.len() - skip) as u64;
                }
                Err(_) => break,
            }
        }
        self.pending.drain(..offset);
    }

    /// Flushes the resampler: afterwards exactly round(in_frames · 16000 /
    /// rate) samples have come out since the last reset. Resets.
    pub fn drain(&mut self, out: &mut Vec<f32>) {
        let target = self.expected(self.in_frames);
        if let Some(inner) = self.inner.as_mut() {
            let mut pending = std::mem::take(&mut self.pending);
            // Zero-padded calls push the tail and the delay line out.
            let mut guard = 0;
            while self.out_samples < target && guard < 64 {
                guard += 1;
                let input = if pending.is_empty() {
                    None
                } else {
                    Some(vec![std::mem::take(&mut pending)])
                };
                let Ok(res) = inner.process_partial(input.as_deref(), None) else {
                    break;
                };
                let produced = &res[0];
                let skip = self.delay_left.min(produced.len());
                self.delay_left -= skip;
                let take = ((target - self.out_samples) as usize).min(produced.len() - skip);
                out.extend_from_slice(&produced[skip..skip + take]);
                self.out_samples += take as u64;
            }
        }
        if self.out_samples < target {
            out.resize(out.len() + (target - self.out_samples) as usize, 0.0);
        }
        self.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, secs: f64, freq: f64) -> Vec<u8> {
        let n = (rate as f64 * secs) as usize;
        (0..n)
            .flat_map(|i| {
                let v = (0.5 * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin())
                    as f32;
                // Stereo, same on both channels.
                [v.to_le_bytes(), v.to_le_bytes()].concat()
            })
            .collect()
    }

    #[test]
    fn lengths_and_alignment_hold_for_common_rates() {
        for rate in [8000, 11025, 22050, 44100, 48000, 96000, 7919, 30011, 16000] {
            let mut d = Downsampler::new(rate, 2, SampleFormat::F32);
            let data = sine(rate, 1.3, 440.0);
            let mut out = Vec::new();
            for piece in data.chunks(8 * 333) {
                d.push_bytes(piece, &mut out);
            }
            d.drain(&mut out);
            let frames = (data.len() / 8) as u64;
            assert_eq!(
                out.len() as u64,
                (frames * 16000 + rate as u64 / 2) / rate as u64,
                "rate {rate}"
            );
            // A 440 Hz sine at 16 kHz: aligned within one output sample
            // (62.5 µs) and otherwise accurate.
            let (shift, err) = (-40..=40)
                .map(|k| {
                    let shift = k as f64 * 0.05;
                    let ideal = |i: usize| {
                        0.5 * (2.0 * std::f64::consts::PI * 440.0 * (i as f64 - shift) / 16000.0)
                            .sin()
                    };
                    (
                        shift,
                        (4000..16000)
                            .map(|i| (out[i] as f64 - ideal(i)).abs())
                            .fold(0.0, f64::max),
                    )
                })
                .fold(
                    (0.0, f64::MAX),
                    |best, x| if x.1 < best.1 { x } else { best },
                );
            assert!(
                shift.abs() <= 1.0 && err < 0.005,
                "rate {rate}: shift {shift} samples, max error {err}"
            );
        }
    }

    #[test]
    fn only_rates_it_cannot_resample_are_unanalysable() {
        for rate in [MIN_RATE, 8000, 16000, 44100, 192_000] {
            let d = Downsampler::new(rate, 1, SampleFormat::F32);
            assert_eq!(d.unanalysable(), None, "rate {rate}");
        }
        for rate in [1, MIN_RATE - 1] {
            let why = Downsampler::new(rate, 1, SampleFormat::S16)
                .unanalysable()
                .unwrap_or_else(|| panic!("rate {rate} is resampled"));
            assert!(why.contains(&format!("{rate} Hz")), "{why}");
        }
    }

    #[test]
    fn reset_starts_afresh() {
        // reset() reuses the resampler: after it, the same input must give
        // exactly what a new downsampler gives.
        let data = sine(44100, 0.5, 300.0);
        let run = |d: &mut Downsampler| {
            let mut out = Vec::new();
            d.push_bytes(&data, &mut out);
            d.drain(&mut out);
            out
        };
        let mut reused = Downsampler::new(44100, 2, SampleFormat::F32);
        let first = run(&mut reused);
        let mut partial = Vec::new();
        reused.push_bytes(&data[..8 * 777], &mut partial);
        reused.reset();
        assert_eq!(run(&mut reused), first);
        assert_eq!(
            run(&mut Downsampler::new(44100, 2, SampleFormat::F32)),
            first
        );
    }
}
