//! Where voices are compared: in PLDA space when the pipeline has a PLDA,
//! by a log-likelihood ratio that weighs how much speech each side rests
//! on; otherwise by the cosine of raw embeddings.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use crate::engine::clustering::plda::Plda;

#[derive(Clone)]
pub enum Voice {
    /// Raw embeddings, cosine similarity.
    Cosine,
    /// PLDA features, same-vs-different-speaker log-likelihood ratio.
    Plda(Arc<Plda>),
}

impl Voice {
    pub fn new(plda: Option<Arc<Plda>>) -> Self {
        plda.map_or(Voice::Cosine, Voice::Plda)
    }

    /// Features `[n, F]` of embeddings `[n, D]`; empty when they do not
    /// fit the PLDA (a skipped chunk).
    pub fn features(&self, embeddings: ArrayView2<f32>) -> Array2<f64> {
        match self {
            Voice::Cosine => embeddings.mapv(f64::from),
            Voice::Plda(plda) => plda
                .transform(embeddings)
                .unwrap_or_else(|_| Array2::zeros((embeddings.nrows(), 0))),
        }
    }

    /// Score that `a` (mean of `n` features) and `b` (mean of `m`) are one
    /// speaker; compare with `new_speaker_bar` and `returning_bar`.
    pub fn score(&self, a: &[f64], n: f64, b: &[f64], m: f64) -> f64 {
        match self {
            Voice::Cosine => cosine(a, b),
            Voice::Plda(plda) => llr(a, n, b, m, plda.phi().as_slice().unwrap_or(&[])),
        }
    }

    /// Below this score against every known speaker, one chunk's clean
    /// embedding starts a tentative speaker.
    pub fn new_speaker_bar(&self) -> f64 {
        match self {
            // One chunk's CAM++ embedding scores about 0.9 against its own
            // speaker's model and rarely above 0.65 against another's.
            Voice::Cosine => 0.7,
            // One chunk's embedding scores +50 to +130 against its own
            // speaker's model and mostly below -40 against a stranger's
            // (sim-dev looped); between, it mostly holds the end of one
            // voice and the start of the next, and a new label for it
            // splits a voice in two at the live edge. Bars from -25 to -40
            // gave the same DER; 0 cost 1.8 points live (docs/live.md).
            Voice::Plda(_) => -30.0,
        }
    }

    /// At or above this score a new cluster is taken for an absent speaker.
    pub fn returning_bar(&self) -> f64 {
        match self {
            // CAM++ centroids of two halves of one speaker's speech (sim-dev,
            // 49 speakers) scored 0.79–0.99; of different speakers at most
            // 0.65, 99 % of pairs below 0.59.
            Voice::Cosine => 0.6,
            Voice::Plda(_) => 0.0,
        }
    }
}

pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa > 0.0 && bb > 0.0 {
        ab / (aa.sqrt() * bb.sqrt())
    } else {
        0.0
    }
}

/// Two-covariance PLDA log-likelihood ratio of "one speaker" against "two
/// speakers" for feature means `a` (of `n`) and `b` (of `m`), with
/// between-speaker variances `phi` and unit within-speaker variance.
fn llr(a: &[f64], n: f64, b: &[f64], m: f64, phi: &[f64]) -> f64 {
    if n <= 0.0 || m <= 0.0 || a.len() != b.len() || a.len() > phi.len() {
        return f64::NEG_INFINITY;
    }
    // Each embedding counts as independent evidence. Overlapping chunks
    // share speech, but discounting them (0.05–0.5 of a vote each) cost
    // 1–3 points of DER in a six-hour replay of sim-dev: the between-speaker
    // variances are what keep two voices apart.
    let (wn, wm) = (1.0 / n.max(1.0), 1.0 / m.max(1.0));
    let mut total = 0.0;
    for ((&x, &y), &between) in a.iter().zip(b).zip(phi) {
        let (va, vb) = (between + wn, between + wm);
        let det = va * vb - between * between;
        let joint = (vb * x * x - 2.0 * between * x * y + va * y * y) / det;
        total -= 0.5 * (joint - x * x / va - y * y / vb + (det / (va * vb)).ln());
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plda_ratio_favours_the_same_voice_and_grows_with_evidence() {
        let phi = [4.0, 2.0, 1.0];
        let a = [1.5, -1.0, 0.5];
        let near = [1.4, -0.9, 0.6];
        let far = [-1.5, 1.0, -0.5];
        assert!(llr(&a, 5.0, &near, 50.0, &phi) > 0.0);
        assert!(llr(&a, 5.0, &far, 50.0, &phi) < 0.0);
        assert!(llr(&a, 50.0, &near, 50.0, &phi) > llr(&a, 5.0, &near, 50.0, &phi));
        assert_eq!(llr(&a, 0.0, &near, 5.0, &phi), f64::NEG_INFINITY);
    }
}
