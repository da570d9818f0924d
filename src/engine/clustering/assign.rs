//! Per-chunk assignment of local speakers to global clusters (docs/design.md §7).
//!
//! `constrained_assignment` is pyannote's `constrained_argmax`
//! (`linear_sum_assignment(scores, maximize=True)`): two local speakers of
//! one chunk never share a cluster. `argmax_assignment` is the
//! unconstrained pyannote 3.1 behaviour.

use ndarray::ArrayView2;
use pathfinding::prelude::{kuhn_munkres, Matrix};

/// Label for "no global speaker".
pub const NO_SPEAKER: i32 = -2;

/// Max-total-score one-to-one assignment of rows (local speakers) to
/// columns (clusters). Returns one cluster index per row, or `NO_SPEAKER`
/// for rows left over when there are more rows than columns and for rows
/// whose scores are all NaN/inf (no embedding). A non-finite entry inside
/// an otherwise finite row is treated as "worse than anything".
///
/// Solved exactly with Kuhn–Munkres on scores scaled to i64 (resolution
/// ~1e-12 of the largest |score|); deterministic, including ties.
pub fn constrained_assignment(scores: ArrayView2<f64>) -> Vec<i32> {
    let (rows, cols) = scores.dim();
    let mut out = vec![NO_SPEAKER; rows];
    let valid: Vec<usize> = (0..rows)
        .filter(|&r| scores.row(r).iter().any(|v| v.is_finite()))
        .collect();
    if valid.is_empty() || cols == 0 {
        return out;
    }
    let finite = || {
        valid
            .iter()
            .flat_map(|&r| scores.row(r).into_iter().copied())
            .filter(|v| v.is_finite())
    };
    let min = finite().fold(f64::INFINITY, f64::min);
    let max_abs = finite()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max((min - 1.0).abs());
    let scale = if max_abs > 0.0 { 1e12 / max_abs } else { 1.0 };
    let w = |r: usize, c: usize| -> i64 {
        let v = scores[[r, c]];
        let v = if v.is_finite() { v } else { min - 1.0 };
        (v * scale).round() as i64
    };
    if valid.len() <= cols {
        let m = Matrix::from_fn(valid.len(), cols, |(i, c)| w(valid[i], c));
        let (_, assignment) = kuhn_munkres(&m);
        for (i, c) in assignment.into_iter().enumerate() {
            out[valid[i]] = c as i32;
        }
    } else {
        // More speakers than clusters: assign every cluster to one speaker.
        let m = Matrix::from_fn(cols, valid.len(), |(c, i)| w(valid[i], c));
        let (_, assignment) = kuhn_munkres(&m);
        for (c, i) in assignment.into_iter().enumerate() {
            out[valid[i]] = c as i32;
        }
    }
    out
}

/// Unconstrained: each row takes its best column (first maximum, like
/// `np.argmax`); rows without any finite score get `NO_SPEAKER`.
pub fn argmax_assignment(scores: ArrayView2<f64>) -> Vec<i32> {
    scores
        .rows()
        .into_iter()
        .map(|row| {
            let mut best: Option<(usize, f64)> = None;
            for (c, &v) in row.iter().enumerate() {
                if v.is_finite() && best.is_none_or(|(_, b)| v > b) {
                    best = Some((c, v));
                }
            }
            best.map_or(NO_SPEAKER, |(c, _)| c as i32)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    /// Brute force over all injective row→column maps.
    fn brute(s: &Array2<f64>) -> f64 {
        fn go(s: &Array2<f64>, r: usize, used: &mut Vec<bool>, left: usize) -> f64 {
            if r == s.nrows() {
                return 0.0;
            }
            let mut best = f64::NEG_INFINITY;
            if s.nrows() - r > left {
                best = go(s, r + 1, used, left); // row unassigned
            }
            for c in 0..s.ncols() {
                if !used[c] && left > 0 {
                    used[c] = true;
                    best = best.max(s[[r, c]] + go(s, r + 1, used, left - 1));
                    used[c] = false;
                }
            }
            best
        }
        let k = s.nrows().min(s.ncols());
        go(s, 0, &mut vec![false; s.ncols()], k)
    }

    #[test]
    fn matches_brute_force() {
        let mut seed = 12345u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for cols in 1..6 {
            let s = Array2::from_shape_fn((3, cols), |_| rnd() * 2.0);
            let a = constrained_assignment(s.view());
            let total: f64 = a
                .iter()
                .enumerate()
                .filter(|(_, &c)| c >= 0)
                .map(|(r, &c)| s[[r, c as usize]])
                .sum();
            assert!((total - brute(&s)).abs() < 1e-9, "{s:?} {a:?}");
            let mut used: Vec<i32> = a.iter().copied().filter(|&c| c >= 0).collect();
            used.sort();
            used.dedup();
            assert_eq!(used.len(), 3.min(cols));
        }
    }

    #[test]
    fn nan_rows_and_empty() {
        let s = array![[f64::NAN, f64::NAN], [0.9, 0.1], [0.8, 0.2]];
        assert_eq!(constrained_assignment(s.view()), vec![-2, 0, 1]);
        assert_eq!(argmax_assignment(s.view()), vec![-2, 0, 0]);
        assert_eq!(
            constrained_assignment(Array2::<f64>::zeros((3, 0)).view()),
            vec![-2; 3]
        );
        assert_eq!(
            constrained_assignment(Array2::<f64>::zeros((0, 2)).view()),
            Vec::<i32>::new()
        );
    }
}
