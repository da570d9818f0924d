//! Kaldi-compatible log-mel filterbank, as torchaudio.compliance.kaldi.fbank
//! computes it with the options CAM++ was trained with: 80 bins, 25 ms Povey
//! window, 10 ms shift, no dither, pre-emphasis 0.97, DC removal, power
//! spectrum, log floored at f32 epsilon, snip_edges. Input stays in [-1, 1]
//! (CAM++ was trained on unscaled waveforms, checked against the reference).

use std::sync::Arc;

use ndarray::{Array2, Axis};
use realfft::{RealFftPlanner, RealToComplex};

use crate::engine::config::{FBANK_BINS, FBANK_SHIFT, FBANK_WINDOW, SAMPLE_RATE};

const FFT_SIZE: usize = 512;
const PREEMPHASIS: f32 = 0.97;
const LOW_FREQ: f64 = 20.0;

/// Reusable fbank computer: window, mel matrix and FFT plan are built once.
pub struct Fbank {
    window: Vec<f32>,
    /// Per mel bin: first FFT bin and its weights (the triangles are sparse).
    mel_filters: Vec<(usize, Vec<f32>)>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl Default for Fbank {
    fn default() -> Self {
        Self::new()
    }
}

fn mel(hz: f64) -> f64 {
    1127.0 * (1.0 + hz / 700.0).ln()
}

impl Fbank {
    pub fn new() -> Self {
        let n = FBANK_WINDOW;
        let window = (0..n)
            .map(|i| {
                let hann =
                    0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (n - 1) as f64).cos();
                hann.powf(0.85) as f32
            })
            .collect();
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(FFT_SIZE);
        Self {
            window,
            mel_filters: mel_filters(),
            fft,
        }
    }

    /// Number of frames for `num_samples` samples (snip_edges = true).
    pub fn num_frames(num_samples: usize) -> usize {
        if num_samples < FBANK_WINDOW {
            0
        } else {
            1 + (num_samples - FBANK_WINDOW) / FBANK_SHIFT
        }
    }

    /// Log-mel energies `[frames, 80]`, without mean normalisation.
    pub fn log_mel(&self, samples: &[f32]) -> Array2<f32> {
        let frames = Self::num_frames(samples.len());
        let mut out = Array2::<f32>::zeros((frames, FBANK_BINS));
        let mut buf = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0f32; FFT_SIZE / 2];
        for (f, mut row) in out.axis_iter_mut(Axis(0)).enumerate() {
            let frame = &samples[f * FBANK_SHIFT..f * FBANK_SHIFT + FBANK_WINDOW];
            let mean = frame.iter().map(|&x| x as f64).sum::<f64>() as f32 / FBANK_WINDOW as f32;
            // Pre-emphasis on the DC-free frame; the first sample uses itself as predecessor.
            let mut prev = frame[0] - mean;
            for (i, &x) in frame.iter().enumerate() {
                let cur = x - mean;
                buf[i] = (cur - PREEMPHASIS * prev) * self.window[i];
                prev = cur;
            }
            buf[FBANK_WINDOW..].fill(0.0);
            // A failing FFT would mean mismatched buffer sizes: ours are fixed, from the plan.
            if self
                .fft
                .process_with_scratch(&mut buf, &mut spectrum, &mut scratch)
                .is_err()
            {
                continue;
            }
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for (m, (start, weights)) in self.mel_filters.iter().enumerate() {
                let energy: f32 = weights
                    .iter()
                    .zip(&power[*start..])
                    .map(|(w, p)| w * p)
                    .sum();
                row[m] = energy.max(f32::EPSILON).ln();
            }
        }
        out
    }

    /// Fbank as CAM++ consumes it: log-mel minus its mean over time.
    pub fn compute(&self, samples: &[f32]) -> Array2<f32> {
        let mut feats = self.log_mel(samples);
        subtract_time_mean(&mut feats);
        feats
    }
}

/// Cepstral-style mean normalisation over the frames given.
pub fn subtract_time_mean(feats: &mut Array2<f32>) {
    if feats.nrows() == 0 {
        return;
    }
    if let Some(mean) = feats.view().mean_axis(Axis(0)) {
        *feats -= &mean;
    }
}

/// Triangular mel filters over FFT bins 0..256 (Nyquist excluded, as Kaldi does).
fn mel_filters() -> Vec<(usize, Vec<f32>)> {
    let nyquist = SAMPLE_RATE as f64 / 2.0;
    let bin_width = SAMPLE_RATE as f64 / FFT_SIZE as f64;
    let (mel_low, mel_high) = (mel(LOW_FREQ), mel(nyquist));
    let delta = (mel_high - mel_low) / (FBANK_BINS + 1) as f64;
    (0..FBANK_BINS)
        .map(|b| {
            let left = mel_low + b as f64 * delta;
            let center = left + delta;
            let right = center + delta;
            let weights: Vec<(usize, f32)> = (0..FFT_SIZE / 2)
                .filter_map(|k| {
                    let m = mel(bin_width * k as f64);
                    let up = (m - left) / (center - left);
                    let down = (right - m) / (right - center);
                    let w = up.min(down);
                    (w > 0.0).then_some((k, w as f32))
                })
                .collect();
            let start = weights.first().map_or(0, |w| w.0);
            (start, weights.into_iter().map(|w| w.1).collect())
        })
        .collect()
}

/// Log-mel of consecutive, overlapping chunks. Chunks 1 s apart share 898
/// of their 998 frames, and a frame depends only on its own 400 samples,
/// so the shared frames are copied instead of recomputed (same values).
#[derive(Default)]
pub struct SlidingLogMel {
    previous: Option<(usize, Array2<f32>)>,
}

impl SlidingLogMel {
    /// Log-mel of `audio`, a chunk starting at absolute sample `start`.
    pub fn chunk(&mut self, fbank: &Fbank, start: usize, audio: &[f32]) -> Array2<f32> {
        let frames = Fbank::num_frames(audio.len());
        let reusable = match &self.previous {
            Some((prev_start, prev))
                if start > *prev_start && (start - prev_start) % FBANK_SHIFT == 0 =>
            {
                let shift = (start - prev_start) / FBANK_SHIFT;
                (prev.nrows() == frames && shift < frames).then_some(shift)
            }
            _ => None,
        };
        let out = match (reusable, &self.previous) {
            (Some(shift), Some((_, prev))) => {
                let kept = frames - shift;
                let fresh = fbank.log_mel(&audio[kept * FBANK_SHIFT..]);
                let mut out = Array2::<f32>::zeros((frames, FBANK_BINS));
                out.slice_mut(ndarray::s![..kept, ..])
                    .assign(&prev.slice(ndarray::s![shift.., ..]));
                out.slice_mut(ndarray::s![kept.., ..]).assign(&fresh);
                out
            }
            _ => fbank.log_mel(audio),
        };
        self.previous = Some((start, out.clone()));
        out
    }
}
