//! VBx (Landini et al. 2022), the non-HMM (GMM) form pyannote 4 uses:
//! a port of `pyannote/audio/utils/vbx.py::{VBx, cluster_vbx}`, f64
//! throughout (docs/design.md §6).

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VbxParams {
    /// Sufficient-statistics scale.
    pub fa: f64,
    /// Speaker regularisation (larger → fewer speakers).
    pub fb: f64,
    pub max_iters: usize,
    /// Stop when the ELBO improves by less than this.
    pub epsilon: f64,
    /// Softmax temperature applied to the one-hot AHC initialisation.
    pub init_smoothing: f64,
}

impl Default for VbxParams {
    fn default() -> Self {
        Self {
            fa: 0.07,
            fb: 0.8,
            max_iters: 20,
            epsilon: 1e-4,
            init_smoothing: 7.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct VbxOutput {
    /// Responsibilities `[n, k]`.
    pub gamma: Array2<f64>,
    /// Speaker priors `[k]`; speakers VBx dropped go to ~0.
    pub pi: Array1<f64>,
    /// ELBO after each iteration.
    pub elbo: Vec<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum VbxError {
    #[error("VBx shape mismatch: {0}")]
    Shape(String),
    #[error("VBx input contains NaN or inf ({0})")]
    NonFinite(&'static str),
}

/// `logsumexp` over a row, scipy style (shift by the max).
fn logsumexp(v: &[f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    v.iter().map(|x| (x - m).exp()).sum::<f64>().ln() + m
}

/// VBx with uniform initial priors and initial responsibilities `gamma`
/// (`VBx(X, Phi, Fa, Fb, pi=k, gamma, maxIters, epsilon)`).
pub fn vbx(
    x: ArrayView2<f64>,
    phi: ArrayView1<f64>,
    gamma: Array2<f64>,
    p: &VbxParams,
) -> Result<VbxOutput, VbxError> {
    let (n, d) = x.dim();
    let k = gamma.ncols();
    if n == 0 || d == 0 || k == 0 {
        return Err(VbxError::Shape(format!(
            "empty input: x {n}x{d}, gamma with {k} speakers"
        )));
    }
    if phi.len() != d || gamma.nrows() != n {
        return Err(VbxError::Shape(format!(
            "x {n}x{d}, phi {}, gamma {}x{k}",
            phi.len(),
            gamma.nrows()
        )));
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(VbxError::NonFinite("features"));
    }
    if phi.iter().any(|v| !v.is_finite() || *v < 0.0) || gamma.iter().any(|v| !v.is_finite()) {
        return Err(VbxError::NonFinite("phi or gamma"));
    }
    let mut gamma = gamma;
    let mut pi = Array1::<f64>::from_elem(k, 1.0 / k as f64);
    // G = -0.5 (|x|^2 + D ln 2π): per-frame constant of (23).
    let ln2pi = (2.0 * std::f64::consts::PI).ln();
    let g: Vec<f64> = x
        .rows()
        .into_iter()
        .map(|r| -0.5 * (r.dot(&r) + d as f64 * ln2pi))
        .collect();
    let sqrt_phi = phi.mapv(f64::sqrt);
    let rho = &x * &sqrt_phi;
    let ratio = p.fa / p.fb;
    let mut elbos: Vec<f64> = Vec::new();
    for ii in 0..p.max_iters {
        let ns = gamma.sum_axis(Axis(0));
        // invL (17) and alpha (16), [k, d].
        let inv_l = Array2::from_shape_fn((k, d), |(s, j)| 1.0 / (1.0 + ratio * ns[s] * phi[j]));
        let alpha = inv_l.mapv(|v| ratio * v) * gamma.t().dot(&rho);
        // log p (23): Fa (rho·alphaᵀ - 0.5 (invL + alpha²)·Phi + G).
        let quad: Vec<f64> = (0..k)
            .map(|s| {
                (0..d)
                    .map(|j| (inv_l[[s, j]] + alpha[[s, j]] * alpha[[s, j]]) * phi[j])
                    .sum()
            })
            .collect();
        let ra = rho.dot(&alpha.t());
        let lpi: Vec<f64> = pi.iter().map(|v| (v + 1e-8).ln()).collect();
        let mut log_px_total = 0.0;
        for t in 0..n {
            let row: Vec<f64> = (0..k)
                .map(|s| p.fa * (ra[[t, s]] - 0.5 * quad[s] + g[t]) + lpi[s])
                .collect();
            let lse = logsumexp(&row);
            log_px_total += lse;
            for s in 0..k {
                gamma[[t, s]] = (row[s] - lse).exp();
            }
        }
        let sums = gamma.sum_axis(Axis(0));
        let total = sums.sum();
        pi = sums / total;
        let reg: f64 = inv_l
            .iter()
            .zip(alpha.iter())
            .map(|(&l, &a)| l.ln() - l - a * a + 1.0)
            .sum();
        let elbo = log_px_total + p.fb * 0.5 * reg;
        let stop = ii > 0 && elbos.last().is_some_and(|prev| elbo - prev < p.epsilon);
        elbos.push(elbo);
        if stop {
            break;
        }
    }
    Ok(VbxOutput {
        gamma,
        pi,
        elbo: elbos,
    })
}

/// pyannote `cluster_vbx`: init = softmax(smoothing · one-hot(labels)),
/// `k = max(label) + 1`, then [`vbx`].
pub fn cluster_vbx(
    labels: &[usize],
    fea: ArrayView2<f64>,
    phi: ArrayView1<f64>,
    p: &VbxParams,
) -> Result<VbxOutput, VbxError> {
    if labels.len() != fea.nrows() {
        return Err(VbxError::Shape(format!(
            "{} labels for {} features",
            labels.len(),
            fea.nrows()
        )));
    }
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let mut q = Array2::<f64>::zeros((labels.len(), k));
    for (t, &l) in labels.iter().enumerate() {
        q[[t, l]] = 1.0;
    }
    if p.init_smoothing >= 0.0 {
        for mut row in q.rows_mut() {
            let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max) * p.init_smoothing;
            row.mapv_inplace(|v| (v * p.init_smoothing - m).exp());
            let s = row.sum();
            row.mapv_inplace(|v| v / s);
        }
    }
    vbx(fea, phi, q, p)
}

/// Mean of the rows of `x` per label (`k` rows).
pub fn label_means(x: &Array2<f64>, labels: &[usize], k: usize) -> Array2<f64> {
    let mut m = Array2::<f64>::zeros((k, x.ncols()));
    let mut n = vec![0usize; k];
    for (row, &l) in x.rows().into_iter().zip(labels) {
        m.row_mut(l).scaled_add(1.0, &row);
        n[l] += 1;
    }
    for (mut row, &c) in m.rows_mut().into_iter().zip(&n) {
        row /= c.max(1) as f64;
    }
    m
}

/// Deterministic k-means (farthest-first init from the point nearest the
/// mean, then Lloyd). Stands in for sklearn's seeded k-means++ (n_init=3),
/// which cannot be reproduced bit for bit.
pub fn kmeans(x: &Array2<f64>, k: usize) -> Vec<usize> {
    let n = x.nrows();
    let k = k.clamp(1, n.max(1));
    let d2 = |a: ArrayView1<f64>, b: ArrayView1<f64>| {
        a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum::<f64>()
    };
    let argbest = |f: &dyn Fn(usize) -> f64| {
        (0..n)
            .fold((0, f64::NAN), |b, i| {
                if b.1.is_nan() || f(i) > b.1 {
                    (i, f(i))
                } else {
                    b
                }
            })
            .0
    };
    let Some(mean) = x.mean_axis(Axis(0)) else {
        return vec![0; n];
    };
    let mut centers = vec![argbest(&|i| -d2(x.row(i), mean.view()))];
    while centers.len() < k {
        let far = argbest(&|i| {
            centers
                .iter()
                .map(|&c| d2(x.row(i), x.row(c)))
                .fold(f64::INFINITY, f64::min)
        });
        centers.push(far);
    }
    let mut c = Array2::from_shape_fn((k, x.ncols()), |(j, d)| x[[centers[j], d]]);
    let mut labels = vec![usize::MAX; n];
    for _ in 0..300 {
        let new: Vec<usize> = (0..n)
            .map(|i| {
                (0..k)
                    .fold((0, f64::INFINITY), |b, j| {
                        let v = d2(x.row(i), c.row(j));
                        if v < b.1 {
                            (j, v)
                        } else {
                            b
                        }
                    })
                    .0
            })
            .collect();
        if new == labels {
            break;
        }
        labels = new;
        c = label_means(x, &labels, k);
        // Empty cluster: move it onto the point farthest from its centre.
        for j in 0..k {
            if !labels.contains(&j) {
                let far = argbest(&|i| d2(x.row(i), c.row(labels[i])));
                labels[far] = j;
                c.row_mut(j).assign(&x.row(far));
            }
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn rejects_bad_shapes() {
        let x = Array2::<f64>::zeros((3, 2));
        let phi = array![1.0, 1.0, 1.0];
        assert!(cluster_vbx(&[0, 0, 1], x.view(), phi.view(), &VbxParams::default()).is_err());
        assert!(cluster_vbx(
            &[],
            Array2::zeros((0, 2)).view(),
            array![1.0, 1.0].view(),
            &VbxParams::default()
        )
        .is_err());
    }

    #[test]
    fn separates_two_blobs() {
        let x = array![[5.0, 0.0], [5.1, 0.1], [-5.0, 0.0], [-5.1, -0.1]];
        let phi = array![10.0, 1.0];
        let p = VbxParams {
            fa: 1.0,
            fb: 1.0,
            ..VbxParams::default()
        };
        let out = cluster_vbx(&[0, 0, 1, 1], x.view(), phi.view(), &p).unwrap();
        assert!(out.gamma[[0, 0]] > 0.9 && out.gamma[[3, 1]] > 0.9);
        assert!((out.pi.sum() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn kmeans_is_deterministic_and_handles_small_n() {
        let x = Array2::from_shape_fn((6, 2), |(i, d)| {
            (if i < 3 { d as f64 } else { 10.0 + d as f64 }) + i as f64 * 0.01
        });
        let a = kmeans(&x, 2);
        assert_eq!(a, kmeans(&x, 2));
        assert_ne!(a[0], a[5]);
        assert_eq!(kmeans(&x, 10).len(), 6);
        assert!(kmeans(&Array2::zeros((0, 2)), 2).is_empty());
    }
}
