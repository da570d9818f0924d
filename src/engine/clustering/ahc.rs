//! Centroid-linkage agglomerative clustering (docs/design.md §6, first step).
//!
//! Ports scipy's `linkage(method="centroid")` (the generic `fast_linkage`
//! with its binary heap, so merge order and tie handling are scipy's) and
//! `fcluster(criterion="distance")` (whose label order depends on the
//! dendrogram layout: pyannote feeds those labels straight into VBx, so the
//! order must match for gamma/pi parity).

use ndarray::{Array2, ArrayView2};

/// One dendrogram row (scipy `Z[k]`): clusters `a < b` merged at `distance`
/// into cluster id `n + k`, holding `size` points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Merge {
    pub a: usize,
    pub b: usize,
    pub distance: f64,
    pub size: usize,
}

/// numpy's float32 pairwise summation (`add.reduce` along a contiguous
/// axis): reproduces `np.linalg.norm(x, axis=1)` bit for bit.
fn pairwise_sum_f32(a: &[f32]) -> f32 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0f32, |s, &v| s + v)
    } else if n <= 128 {
        let mut r = [0f32; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i + 8 <= n {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[i..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum_f32(&a[..n2]) + pairwise_sum_f32(&a[n2..])
    }
}

/// `np.linalg.norm(row)` for a float32 row.
pub fn norm_f32(row: &[f32]) -> f32 {
    let sq: Vec<f32> = row.iter().map(|v| v * v).collect();
    pairwise_sum_f32(&sq).sqrt()
}

/// Row-wise L2 normalisation in float32, as pyannote does before AHC.
/// Zero rows stay zero (numpy would produce NaN).
pub fn l2_normalize_f32(x: ArrayView2<f32>) -> Array2<f32> {
    let mut out = x.to_owned();
    for mut row in out.rows_mut() {
        let norm = norm_f32(&row.to_vec());
        if norm > 0.0 {
            row.mapv_inplace(|v| v / norm);
        }
    }
    out
}

fn condensed(n: usize, i: usize, j: usize) -> usize {
    let (i, j) = if i < j { (i, j) } else { (j, i) };
    n * i - i * (i + 1) / 2 + (j - i - 1)
}

/// scipy's `Heap` (keys 0..len, values = lower bounds of NN distances).
struct Heap {
    index_by_key: Vec<usize>,
    key_by_index: Vec<usize>,
    values: Vec<f64>,
    size: usize,
}

impl Heap {
    fn new(values: Vec<f64>) -> Self {
        let size = values.len();
        let mut h = Heap {
            index_by_key: (0..size).collect(),
            key_by_index: (0..size).collect(),
            values,
            size,
        };
        for i in (0..size / 2).rev() {
            h.sift_down(i);
        }
        h
    }
    fn get_min(&self) -> (usize, f64) {
        (self.key_by_index[0], self.values[0])
    }
    fn remove_min(&mut self) {
        self.swap(0, self.size - 1);
        self.size -= 1;
        self.sift_down(0);
    }
    fn change_value(&mut self, key: usize, value: f64) {
        let index = self.index_by_key[key];
        let old = self.values[index];
        self.values[index] = value;
        if value < old {
            self.sift_up(index)
        } else {
            self.sift_down(index)
        }
    }
    fn sift_up(&mut self, mut index: usize) {
        while index > 0 {
            let parent = (index - 1) >> 1;
            if self.values[parent] > self.values[index] {
                self.swap(index, parent);
                index = parent;
            } else {
                break;
            }
        }
    }
    fn sift_down(&mut self, mut index: usize) {
        let mut child = 2 * index + 1;
        while child < self.size {
            if child + 1 < self.size && self.values[child + 1] < self.values[child] {
                child += 1;
            }
            if self.values[index] > self.values[child] {
                self.swap(index, child);
                index = child;
                child = 2 * index + 1;
            } else {
                break;
            }
        }
    }
    fn swap(&mut self, i: usize, j: usize) {
        self.values.swap(i, j);
        let (ki, kj) = (self.key_by_index[i], self.key_by_index[j]);
        self.key_by_index.swap(i, j);
        self.index_by_key[ki] = j;
        self.index_by_key[kj] = i;
    }
}

/// Nearest live cluster with a higher index than `x` (scipy
/// `find_min_dist`); falls back to the first live one when every distance
/// is NaN/inf so degenerate input cannot index out of range.
fn find_min_dist(n: usize, d: &[f64], size: &[usize], x: usize) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    for i in x + 1..n {
        if size[i] == 0 {
            continue;
        }
        let dist = d[condensed(n, x, i)];
        match best {
            None => best = Some((i, dist)),
            Some((_, m)) if dist < m => best = Some((i, dist)),
            _ => {}
        }
    }
    best
}

/// Lance–Williams update for centroid linkage, scipy's operation order.
fn centroid_update(d_xi: f64, d_yi: f64, d_xy: f64, nx: usize, ny: usize) -> f64 {
    let (fx, fy, s) = (nx as f64, ny as f64, (nx + ny) as f64);
    (((fx * d_xi * d_xi) + (fy * d_yi * d_yi) - ((nx * ny) as f64 * d_xy * d_xy) / s) / s).sqrt()
}

/// scipy `linkage(points, method="centroid", metric="euclidean")`.
pub fn centroid_linkage(points: ArrayView2<f32>) -> Vec<Merge> {
    let n = points.nrows();
    if n < 2 {
        return Vec::new();
    }
    let rows: Vec<Vec<f64>> = points
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|&v| v as f64).collect())
        .collect();
    let mut d = vec![0.0f64; n * (n - 1) / 2];
    for i in 0..n {
        for j in i + 1..n {
            let s: f64 = rows[i]
                .iter()
                .zip(&rows[j])
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            d[condensed(n, i, j)] = s.sqrt();
        }
    }
    let mut size = vec![1usize; n];
    let mut cluster_id: Vec<usize> = (0..n).collect();
    let mut neighbor = vec![0usize; n - 1];
    let mut min_dist = vec![f64::INFINITY; n - 1];
    for x in 0..n - 1 {
        if let Some((y, dist)) = find_min_dist(n, &d, &size, x) {
            neighbor[x] = y;
            min_dist[x] = dist;
        }
    }
    let mut heap = Heap::new(min_dist.clone());
    let mut z = Vec::with_capacity(n - 1);
    for k in 0..n - 1 {
        let (mut x, mut y, mut dist) = (0, 0, 0.0);
        for _ in 0..n - k {
            let (hx, hd) = heap.get_min();
            x = hx;
            dist = hd;
            y = neighbor[x];
            if dist == d[condensed(n, x, y)] {
                break;
            }
            if let Some((ny, nd)) = find_min_dist(n, &d, &size, x) {
                y = ny;
                dist = nd;
                neighbor[x] = y;
                min_dist[x] = dist;
                heap.change_value(x, dist);
            }
        }
        heap.remove_min();
        let (nx, ny) = (size[x], size[y]);
        let (ia, ib) = (
            cluster_id[x].min(cluster_id[y]),
            cluster_id[x].max(cluster_id[y]),
        );
        z.push(Merge {
            a: ia,
            b: ib,
            distance: dist,
            size: nx + ny,
        });
        size[x] = 0;
        size[y] = nx + ny;
        cluster_id[y] = n + k;
        for (w, &sw) in size.iter().enumerate() {
            if sw == 0 || w == y {
                continue;
            }
            let (cx, cy) = (condensed(n, w, x), condensed(n, w, y));
            d[cy] = centroid_update(d[cx], d[cy], dist, nx, ny);
        }
        for w in 0..x {
            if size[w] > 0 && neighbor[w] == x {
                neighbor[w] = y;
            }
        }
        for w in 0..y {
            if size[w] == 0 {
                continue;
            }
            let dw = d[condensed(n, w, y)];
            if dw < min_dist[w] {
                neighbor[w] = y;
                min_dist[w] = dw;
                heap.change_value(w, dw);
            }
        }
        if y < n - 1 {
            if let Some((w, dw)) = find_min_dist(n, &d, &size, y) {
                neighbor[y] = w;
                min_dist[y] = dw;
                heap.change_value(y, dw);
            }
        }
    }
    z
}

/// scipy `fcluster(Z, t, criterion="distance") - 1` with merge heights
/// `heights[k]` (normally `Z[k].distance`): a subtree is one flat cluster
/// when the largest height inside it is <= t. Labels follow scipy's
/// depth-first numbering.
pub fn fcluster_distance(z: &[Merge], heights: &[f64], t: f64) -> Vec<usize> {
    let n = z.len() + 1;
    if z.is_empty() || heights.len() != z.len() {
        return vec![0; if z.is_empty() { 1 } else { n }];
    }
    // Children always precede parents, so one forward pass gives subtree maxima.
    let mut max_dist = vec![0.0f64; n - 1];
    for (k, m) in z.iter().enumerate() {
        let mut v = heights[k];
        for c in [m.a, m.b] {
            if c >= n {
                v = v.max(max_dist[c - n]);
            }
        }
        max_dist[k] = v;
    }
    let mut labels = vec![0usize; n];
    let mut visited = vec![false; 2 * n - 1];
    let mut stack = vec![2 * n - 2];
    let (mut n_cluster, mut leader): (usize, Option<usize>) = (0, None);
    while let Some(&node) = stack.last() {
        let root = node - n;
        let (lc, rc) = (z[root].a, z[root].b);
        if leader.is_none() && max_dist[root] <= t {
            leader = Some(root);
            n_cluster += 1;
        }
        if lc >= n && !visited[lc] {
            visited[lc] = true;
            stack.push(lc);
            continue;
        }
        if rc >= n && !visited[rc] {
            visited[rc] = true;
            stack.push(rc);
            continue;
        }
        for c in [lc, rc] {
            if c < n {
                if leader.is_none() {
                    n_cluster += 1;
                }
                labels[c] = n_cluster - 1;
            }
        }
        if leader == Some(root) {
            leader = None;
        }
        stack.pop();
    }
    labels
}

/// pyannote VBxClustering's AHC: L2-normalise, centroid linkage, cut at
/// `threshold`, labels 0..k-1 (fcluster's labels are already contiguous,
/// so pyannote's `np.unique(return_inverse=True)` leaves them as they are).
pub fn ahc_labels(embeddings: ArrayView2<f32>, threshold: f64) -> Vec<usize> {
    match embeddings.nrows() {
        0 => Vec::new(),
        1 => vec![0],
        _ => {
            let z = centroid_linkage(l2_normalize_f32(embeddings).view());
            let h: Vec<f64> = z.iter().map(|m| m.distance).collect();
            fcluster_distance(&z, &h, threshold)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_matches_naive_for_small() {
        let v: Vec<f32> = (0..300).map(|i| (i as f32 * 0.37).sin()).collect();
        let naive: f64 = v.iter().map(|&x| x as f64).sum();
        assert!((pairwise_sum_f32(&v) as f64 - naive).abs() < 1e-4);
    }
}
