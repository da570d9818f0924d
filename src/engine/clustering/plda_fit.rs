//! Fitting a PLDA for an embedding model that ships without one (CAM++),
//! from single-speaker recordings, in pyannote's file layout:
//! `x1 = √D·l2norm(x − mean1)`, `x2 = √d·l2norm(x1·lda − mean2)`, then the
//! two-covariance model (mu, tr, psi) in which VBx works.
//!
//! Two kinds (docs: reference/baselines.md): "spherical" — training mean
//! removed, PCA, isotropic within- and between-speaker covariances whose
//! ratio is measured (or given) — and a two-covariance model with both
//! covariances estimated in full from the labelled data after the same PCA.
//! Both are expressed so that VBx sees features whose within-speaker
//! variance is 1 per dimension, the scale its Fa/Fb were tuned for.

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use ndarray::{Array1, Array2};

use crate::engine::clustering::plda::PldaArrays;

/// A fitted PLDA and the between/within variance ratio (traces) measured
/// on the training data.
#[derive(Debug, Clone)]
pub struct FittedPlda {
    pub arrays: PldaArrays,
    pub measured_ratio: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PldaKind {
    /// Within = σ²·I, between = ratio·σ²·I; σ² is measured, and so is the
    /// ratio unless given.
    Spherical { ratio: Option<f64> },
    /// Within and between covariances estimated per dimension pair.
    TwoCovariance,
}

fn l2norm_scaled(v: &DVector<f64>) -> DVector<f64> {
    let n = v.norm();
    let scale = (v.len() as f64).sqrt();
    if n > 0.0 {
        v * (scale / n)
    } else {
        v.clone()
    }
}

fn mean(rows: &[DVector<f64>]) -> DVector<f64> {
    let mut m = DVector::zeros(rows[0].len());
    for r in rows {
        m += r;
    }
    m / rows.len() as f64
}

fn covariance(rows: &[DVector<f64>], centre: &DVector<f64>) -> DMatrix<f64> {
    let d = centre.len();
    let mut c = DMatrix::zeros(d, d);
    for r in rows {
        let x = r - centre;
        c += &x * x.transpose();
    }
    c / rows.len() as f64
}

/// Within-speaker covariance (pooled) and between-speaker covariance of the
/// speaker means, with their traces' ratio as a one-number summary.
pub fn class_covariances(rows: &[DVector<f64>], labels: &[usize]) -> (DMatrix<f64>, DMatrix<f64>) {
    let d = rows[0].len();
    let classes = labels.iter().max().map_or(0, |m| m + 1);
    let mut means = vec![DVector::<f64>::zeros(d); classes];
    let mut counts = vec![0usize; classes];
    for (r, &l) in rows.iter().zip(labels) {
        means[l] += r;
        counts[l] += 1;
    }
    let present: Vec<usize> = (0..classes).filter(|&c| counts[c] > 0).collect();
    for &c in &present {
        means[c] /= counts[c] as f64;
    }
    let mut within = DMatrix::zeros(d, d);
    for (r, &l) in rows.iter().zip(labels) {
        let x = r - &means[l];
        within += &x * x.transpose();
    }
    within /= rows.len() as f64;
    let class_means: Vec<DVector<f64>> = present.iter().map(|&c| means[c].clone()).collect();
    let between = covariance(&class_means, &mean(&class_means));
    (within, between)
}

/// Fits a PLDA of `dim` dimensions from embeddings with speaker labels.
pub fn fit(
    embeddings: &[Vec<f32>],
    labels: &[usize],
    dim: usize,
    kind: PldaKind,
) -> Result<FittedPlda, String> {
    if embeddings.len() < 2 || embeddings.len() != labels.len() {
        return Err("need at least two labelled embeddings".into());
    }
    let d_in = embeddings[0].len();
    if dim == 0 || dim > d_in {
        return Err(format!("PLDA dimension {dim} must be in 1..={d_in}"));
    }
    let raw: Vec<DVector<f64>> = embeddings
        .iter()
        .map(|e| DVector::from_iterator(d_in, e.iter().map(|&v| v as f64)))
        .collect();
    let mean1 = mean(&raw);
    let x1: Vec<DVector<f64>> = raw.iter().map(|x| l2norm_scaled(&(x - &mean1))).collect();
    // PCA on the length-normalised embeddings: the `lda` projection.
    let centre = mean(&x1);
    let eig = SymmetricEigen::new(covariance(&x1, &centre));
    let mut order: Vec<usize> = (0..d_in).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let lda = DMatrix::from_fn(d_in, dim, |r, c| eig.eigenvectors[(r, order[c])]);
    let projected: Vec<DVector<f64>> = x1.iter().map(|x| lda.transpose() * x).collect();
    let mean2 = mean(&projected);
    let x2: Vec<DVector<f64>> = projected
        .iter()
        .map(|p| l2norm_scaled(&(p - &mean2)))
        .collect();
    let mu = mean(&x2);
    let centred: Vec<DVector<f64>> = x2.iter().map(|x| x - &mu).collect();
    let (within, between) = class_covariances(&centred, labels);
    let within_var = within.trace() / dim as f64;
    let measured_ratio = between.trace() / within.trace();
    let (tr, psi) = match kind {
        // pyannote's W = (trᵀ·tr)⁻¹ = σ²·I and B = ratio·σ²·I.
        PldaKind::Spherical { ratio } => (
            DMatrix::identity(dim, dim) / within_var.sqrt(),
            DVector::from_element(dim, ratio.unwrap_or(measured_ratio)),
        ),
        PldaKind::TwoCovariance => diagonalise(&within, &between)?,
    };
    let to_nd1 = |v: &DVector<f64>| Array1::from_iter(v.iter().copied());
    let to_nd2 =
        |m: &DMatrix<f64>| Array2::from_shape_fn((m.nrows(), m.ncols()), |(r, c)| m[(r, c)]);
    let arrays = PldaArrays {
        mean1: to_nd1(&mean1),
        mean2: to_nd1(&mean2),
        lda: to_nd2(&lda),
        mu: to_nd1(&mu),
        tr: to_nd2(&tr),
        psi: to_nd1(&psi),
        mean1_f32: false,
    };
    Ok(FittedPlda {
        arrays,
        measured_ratio,
    })
}

/// `tr`, `psi` with trᵀ·tr = W⁻¹ and trᵀ·diag(1/psi)·tr = B⁻¹ (pyannote's
/// parametrisation), from the generalised eigenproblem B v = λ W v.
fn diagonalise(
    within: &DMatrix<f64>,
    between: &DMatrix<f64>,
) -> Result<(DMatrix<f64>, DVector<f64>), String> {
    let d = within.nrows();
    // A little shrinkage keeps W invertible with few speakers per dimension.
    let w = within + DMatrix::identity(d, d) * (1e-6 * within.trace() / d as f64);
    let chol = w
        .cholesky()
        .ok_or("within-speaker covariance is not positive definite")?;
    let l_inv = chol
        .l()
        .try_inverse()
        .ok_or("within-speaker covariance is singular")?;
    let eig = SymmetricEigen::new(&l_inv * between * l_inv.transpose());
    // v = L⁻ᵀ u, so that vᵀ W v = I and vᵀ B v = diag(λ).
    let v = l_inv.transpose() * &eig.eigenvectors;
    let psi = eig.eigenvalues.map(|l| l.max(1e-9));
    Ok((v.transpose(), psi))
}
