//! pyannote 3.1's `AgglomerativeClustering` (the clustering pyannote-ref
//! used with CAM++, for which no PLDA existed): centroid-linkage AHC cut at
//! a threshold, then small clusters merged into the closest large one.

use ndarray::{ArrayView1, ArrayView2};

use crate::engine::clustering::ahc::{centroid_linkage, fcluster_distance, l2_normalize_f32};
use crate::engine::clustering::vbx::label_means;

/// Sorted unique labels and their counts (`np.unique(return_counts=True)`).
fn unique_counts(labels: &[usize]) -> Vec<(usize, usize)> {
    let mut sorted = labels.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<(usize, usize)> = Vec::new();
    for l in sorted {
        match out.last_mut() {
            Some((v, c)) if *v == l => *c += 1,
            _ => out.push((l, 1)),
        }
    }
    out
}

fn num_large(uc: &[(usize, usize)], min_size: usize) -> usize {
    uc.iter().filter(|(_, c)| *c >= min_size).count()
}

fn cosine_distance(u: ArrayView1<f64>, v: ArrayView1<f64>) -> f64 {
    1.0 - u.dot(&v) / (u.dot(&u).sqrt() * v.dot(&v).sqrt())
}

/// pyannote 3.1's `AgglomerativeClustering.cluster` (method "centroid",
/// metric "cosine"): threshold cut, then clusters smaller than
/// `min(min_cluster_size, max(1, round(0.1 n)))` are merged into the large
/// cluster with the closest centroid; `num_clusters` (or a large-cluster
/// count outside `[min_clusters, max_clusters]`) triggers pyannote's
/// dendrogram search for the iteration giving that many large clusters.
pub fn pyannote_agglomerative(
    embeddings: ArrayView2<f32>,
    threshold: f64,
    min_cluster_size: usize,
    num_clusters: Option<usize>,
    min_clusters: usize,
    max_clusters: usize,
) -> Vec<usize> {
    let n = embeddings.nrows();
    if n < 2 {
        return vec![0; n];
    }
    let mcs = min_cluster_size.min(((0.1 * n as f64).round_ties_even() as usize).max(1));
    let normed = l2_normalize_f32(embeddings);
    let z = centroid_linkage(normed.view());
    let heights: Vec<f64> = z.iter().map(|m| m.distance).collect();
    let mut clusters = fcluster_distance(&z, &heights, threshold);
    let mut uc = unique_counts(&clusters);
    let mut large = num_large(&uc, mcs);

    let target = if large < min_clusters {
        Some(min_clusters)
    } else if large > max_clusters {
        Some(max_clusters)
    } else {
        num_clusters
    };
    if let Some(target) = target.filter(|&t| t != large) {
        // Stop criterion switches from distance to merge index.
        let iter_h: Vec<f64> = (0..z.len()).map(|i| i as f64).collect();
        let mut order: Vec<usize> = (0..z.len()).collect();
        order.sort_by(|&a, &b| {
            (heights[a] - threshold)
                .abs()
                .total_cmp(&(heights[b] - threshold).abs())
        });
        let (mut best_iter, mut best_large) = (n - 1, 1usize);
        for it in order {
            if z[it].size < mcs {
                continue;
            }
            clusters = fcluster_distance(&z, &iter_h, it as f64);
            uc = unique_counts(&clusters);
            large = num_large(&uc, mcs);
            if large.abs_diff(target) < best_large.abs_diff(target) {
                best_iter = it;
                best_large = large;
            }
            if large == target {
                break;
            }
        }
        if best_large != target {
            clusters = fcluster_distance(&z, &iter_h, best_iter as f64);
            uc = unique_counts(&clusters);
            large = num_large(&uc, mcs);
        }
    }
    if large == 0 {
        return vec![0; n];
    }
    let (big, small): (Vec<(usize, usize)>, Vec<_>) = uc.iter().partition(|(_, c)| *c >= mcs);
    if small.is_empty() {
        return clusters;
    }
    // Small clusters join the large one with the closest centroid (first
    // minimum, like np.argmin).
    let k_all = uc.last().map_or(0, |(l, _)| l + 1);
    let means = label_means(&normed.mapv(f64::from), &clusters, k_all);
    let mut remap: Vec<usize> = (0..k_all).collect();
    for &(s, _) in &small {
        let mut best = (big[0].0, f64::INFINITY);
        for &(b, _) in &big {
            let d = cosine_distance(means.row(b), means.row(s));
            if d < best.1 {
                best = (b, d);
            }
        }
        remap[s] = best.0;
    }
    let merged: Vec<usize> = clusters.iter().map(|&c| remap[c]).collect();
    // Renumber 0..k-1 in sorted order (np.unique return_inverse).
    let uniq: Vec<usize> = unique_counts(&merged).into_iter().map(|(l, _)| l).collect();
    merged
        .iter()
        .map(|c| uniq.binary_search(c).unwrap_or(0))
        .collect()
}
