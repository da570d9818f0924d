//! Linking local speakers across chunks (docs/design.md §5–7): training
//! filter, AHC → PLDA → VBx (community-1) or pyannote 3.1's agglomerative
//! clustering, then per-chunk assignment to the centroids.
//!
//! Deviation from pyannote (on purpose): an active local speaker without an
//! embedding (NaN) gets no cluster (-2). pyannote's NaN cosine scores fall
//! into cluster 0 through `argmax` (AHC mode) or `nan_to_num` (VBx mode);
//! on the reference sample no active speaker lacks an embedding, so the
//! DER there is unchanged.

use ndarray::{Array2, Array3, ArrayView1, ArrayView2, ArrayView3, Axis};

pub mod agglomerative;
pub mod ahc;
pub mod assign;
mod method;
pub mod plda;
pub mod plda_fit;
pub mod vbx;

pub use method::{ClusteringConfig, ClusteringMethod};

use agglomerative::pyannote_agglomerative;
use ahc::{ahc_labels, l2_normalize_f32};
use assign::{argmax_assignment, constrained_assignment, NO_SPEAKER};
use plda::{Plda, PldaError};
use vbx::{cluster_vbx, kmeans, label_means, VbxError, VbxParams};

#[derive(Debug, Clone)]
pub struct ClusteringResult {
    /// `[chunks, local]` cluster per local speaker, -2 = none (inactive or no embedding).
    pub hard_clusters: Array2<i32>,
    /// `[chunks, local, k]` = 2 − cosine distance (NaN without embedding;
    /// inactive speakers min − 1 in constrained mode, as pyannote).
    pub soft_clusters: Array3<f64>,
    /// `[k, D]`.
    pub centroids: Array2<f32>,
    /// (chunk, local speaker) of the embeddings that trained the clustering.
    pub train: Vec<(usize, usize)>,
}

impl ClusteringResult {
    pub fn num_clusters(&self) -> usize {
        self.centroids.nrows()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClusteringError {
    #[error("shape mismatch: {0}")]
    Shape(String),
    #[error("VBx clustering needs a PLDA model")]
    MissingPlda,
    #[error("invalid speaker constraints: {0}")]
    Constraints(String),
    #[error(transparent)]
    Plda(#[from] PldaError),
    #[error(transparent)]
    Vbx(#[from] VbxError),
}

/// pyannote `filter_embeddings`: finite embeddings whose speaker has at
/// least `ratio · frames` frames where it is the only active speaker.
pub fn training_indices(
    embeddings: ArrayView3<f32>,
    binarized: ArrayView3<f32>,
    ratio: f64,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for c in 0..binarized.dim().0 {
        let clean = clean_speakers(
            binarized.index_axis(Axis(0), c),
            embeddings.index_axis(Axis(0), c),
            ratio,
        );
        out.extend(
            clean
                .into_iter()
                .enumerate()
                .filter(|&(_, ok)| ok)
                .map(|(s, _)| (c, s)),
        );
    }
    out
}

/// The filter for one chunk: `activity [frames, local]`, `embeddings [local, D]`.
pub fn clean_speakers(
    activity: ArrayView2<f32>,
    embeddings: ArrayView2<f32>,
    ratio: f64,
) -> Vec<bool> {
    let (frames, local) = activity.dim();
    let mut alone = vec![0usize; local];
    for f in activity.outer_iter() {
        let on: Vec<usize> = (0..local).filter(|&s| f[s] > 0.5).collect();
        if let [s] = on[..] {
            alone[s] += 1;
        }
    }
    (0..local)
        .map(|s| {
            alone[s] as f64 >= ratio * frames as f64
                && embeddings.row(s).iter().all(|v| v.is_finite())
        })
        .collect()
}

fn cosine_score(e: ArrayView1<f32>, c: ArrayView1<f64>) -> f64 {
    let (mut uv, mut uu, mut vv) = (0.0, 0.0, 0.0);
    for (&a, &b) in e.iter().zip(c.iter()) {
        let a = a as f64;
        uv += a * b;
        uu += a * a;
        vv += b * b;
    }
    2.0 - (1.0 - uv / (uu.sqrt() * vv.sqrt()))
}

/// Too little to cluster (< 2 training embeddings or max 1 speaker):
/// every active speaker is speaker 0, as in pyannote.
fn single_cluster(
    embeddings: ArrayView3<f32>,
    active: &Array2<bool>,
    train64: &Array2<f64>,
    train: Vec<(usize, usize)>,
) -> ClusteringResult {
    let (chunks, local, dim) = embeddings.dim();
    let mut hard = Array2::from_elem((chunks, local), NO_SPEAKER);
    hard.zip_mut_with(active, |h, &a| {
        if a {
            *h = 0
        }
    });
    let k = usize::from(active.iter().any(|&a| a));
    // Centroid: mean of the training embeddings, else of all finite ones.
    let rows: Vec<Vec<f64>> = if train.is_empty() {
        embeddings
            .outer_iter()
            .flat_map(|c| {
                c.outer_iter()
                    .map(|e| e.mapv(f64::from).to_vec())
                    .collect::<Vec<_>>()
            })
            .filter(|e| e.iter().all(|v| v.is_finite()))
            .collect()
    } else {
        train64.rows().into_iter().map(|r| r.to_vec()).collect()
    };
    let mut c = Array2::<f32>::zeros((k, dim));
    if k == 1 && !rows.is_empty() {
        for d in 0..dim {
            c[[0, d]] = (rows.iter().map(|r| r[d]).sum::<f64>() / rows.len() as f64) as f32;
        }
    }
    let soft = Array3::from_elem((chunks, local, k), 1.0);
    ClusteringResult {
        hard_clusters: hard,
        soft_clusters: soft,
        centroids: c,
        train,
    }
}

/// Clusters `embeddings [chunks, local, D]` given `binarized [chunks, frames, local]`.
pub fn cluster(
    embeddings: ArrayView3<f32>,
    binarized: ArrayView3<f32>,
    plda: Option<&Plda>,
    cfg: &ClusteringConfig,
) -> Result<ClusteringResult, ClusteringError> {
    let (chunks, local, dim) = embeddings.dim();
    let (seg_chunks, _, seg_local) = binarized.dim();
    if chunks != seg_chunks || local != seg_local || dim == 0 {
        return Err(ClusteringError::Shape(format!(
            "embeddings {:?} vs segmentation {:?}",
            embeddings.dim(),
            binarized.dim()
        )));
    }
    // pyannote set_num_speakers.
    let min_spk = cfg.num_speakers.or(cfg.min_speakers).unwrap_or(1).max(1);
    let max_spk = cfg.num_speakers.or(cfg.max_speakers).unwrap_or(usize::MAX);
    if min_spk > max_spk {
        return Err(ClusteringError::Constraints(format!(
            "min {min_spk} > max {max_spk}"
        )));
    }
    let active = binarized.map_axis(Axis(1), |f| f.iter().any(|&v| v > 0.5));
    let train = training_indices(embeddings, binarized, cfg.min_active_ratio);
    let train_x = Array2::from_shape_fn((train.len(), dim), |(i, d)| {
        embeddings[[train[i].0, train[i].1, d]]
    });
    let train64 = train_x.mapv(f64::from);
    let mut constrained = cfg.constrained_assignment;

    if train.len() < 2 || max_spk < 2 {
        return Ok(single_cluster(embeddings, &active, &train64, train));
    }
    let centroids: Array2<f64> = match cfg.method {
        ClusteringMethod::Ahc {
            threshold,
            min_cluster_size,
        } => {
            // pyannote BaseClustering.set_num_clusters clamps to the training size.
            let n = train.len();
            let min_c = min_spk.min(n).max(1);
            let max_c = max_spk.min(n).max(1);
            let num = (min_c == max_c).then_some(min_c);
            let labels = pyannote_agglomerative(
                train_x.view(),
                threshold,
                min_cluster_size,
                num,
                min_c,
                max_c,
            );
            let k = labels.iter().max().map_or(0, |m| m + 1);
            label_means(&train64, &labels, k)
        }
        ClusteringMethod::Vbx {
            threshold,
            fa,
            fb,
            max_iters,
        } => {
            let plda = plda.ok_or(ClusteringError::MissingPlda)?;
            let init = ahc_labels(train_x.view(), threshold);
            let fea = plda.transform(train_x.view())?;
            let params = VbxParams {
                fa,
                fb,
                max_iters,
                ..VbxParams::default()
            };
            let out = cluster_vbx(&init, fea.view(), plda.phi(), &params)?;
            let keep: Vec<usize> = (0..out.pi.len()).filter(|&s| out.pi[s] > 1e-7).collect();
            let w = out.gamma.select(Axis(1), &keep);
            let mut c = w.t().dot(&train64);
            for (mut row, s) in c.rows_mut().into_iter().zip(w.sum_axis(Axis(0))) {
                row /= s;
            }
            // Honour num/min/max speakers like pyannote: re-cluster the
            // normalised training embeddings with k-means.
            let auto = c.nrows();
            let target = if auto < min_spk {
                Some(min_spk)
            } else if auto > max_spk {
                Some(max_spk)
            } else {
                cfg.num_speakers
            };
            match target.map(|t| t.min(train.len())) {
                Some(t) if t != auto => {
                    constrained = false;
                    let normed = l2_normalize_f32(train_x.view()).mapv(f64::from);
                    let labels = kmeans(&normed, t);
                    label_means(&train64, &labels, t)
                }
                _ => c,
            }
        }
    };

    let k = centroids.nrows();
    let mut soft = Array3::<f64>::from_elem((chunks, local, k), f64::NAN);
    for c in 0..chunks {
        for s in 0..local {
            let e = embeddings.slice(ndarray::s![c, s, ..]);
            if e.iter().all(|v| v.is_finite()) {
                for j in 0..k {
                    soft[[c, s, j]] = cosine_score(e, centroids.row(j));
                }
            }
        }
    }
    let mut hard = Array2::from_elem((chunks, local), NO_SPEAKER);
    for c in 0..chunks {
        // Inactive speakers never take a cluster: masking them is
        // equivalent to pyannote's "min − 1" score (any active score wins).
        let masked = Array2::from_shape_fn((local, k), |(s, j)| {
            if active[[c, s]] {
                soft[[c, s, j]]
            } else {
                f64::NAN
            }
        });
        let row = if constrained {
            constrained_assignment(masked.view())
        } else {
            argmax_assignment(masked.view())
        };
        hard.row_mut(c).assign(&ndarray::Array1::from(row));
    }
    if constrained {
        let min = soft
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f64::INFINITY, f64::min);
        for ((c, s, _), v) in soft.indexed_iter_mut() {
            if !active[[c, s]] && min.is_finite() {
                *v = min - 1.0;
            }
        }
    }
    Ok(ClusteringResult {
        hard_clusters: hard,
        soft_clusters: soft,
        centroids: centroids.mapv(|v| v as f32),
        train,
    })
}
