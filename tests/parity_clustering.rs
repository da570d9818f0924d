//! Parity of the numeric stages with pyannote.audio 4.0.1's intermediate
//! arrays (../shared/reference/pyannote/{sample,vbx}). Each test states
//! its tolerance.

mod common;

use std::fs::File;
use std::path::PathBuf;

use common::der::{score, Segment};
use gstspeakrs::engine::clustering::ahc::ahc_labels;
use gstspeakrs::engine::clustering::plda::Plda;
use gstspeakrs::engine::clustering::vbx::{cluster_vbx, VbxParams};
use gstspeakrs::engine::clustering::{cluster, training_indices, ClusteringConfig};
use gstspeakrs::engine::output::count::{speaker_count, FrameGrid};
use gstspeakrs::engine::output::reconstruct::{reconstruct, turns};
use gstspeakrs::engine::output::rttm::{format_rttm, parse_rttm};
use ndarray::{Array1, Array2, Array3, ArrayD, Axis, Ix1, Ix2, Ix3};
use ndarray_npy::ReadNpyExt;

fn refdir(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/pyannote")
        .join(sub)
}

fn npy<T: ndarray_npy::ReadableElement>(sub: &str, name: &str) -> ArrayD<T> {
    let p = refdir(sub).join(name);
    ArrayD::<T>::read_npy(File::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn f32_3(sub: &str, name: &str) -> Array3<f32> {
    npy::<f32>(sub, name).into_dimensionality::<Ix3>().unwrap()
}
fn f64_2(sub: &str, name: &str) -> Array2<f64> {
    npy::<f64>(sub, name).into_dimensionality::<Ix2>().unwrap()
}
fn f64_1(sub: &str, name: &str) -> Array1<f64> {
    npy::<f64>(sub, name).into_dimensionality::<Ix1>().unwrap()
}
fn i64_2(sub: &str, name: &str) -> Array2<i64> {
    npy::<i64>(sub, name).into_dimensionality::<Ix2>().unwrap()
}

fn inputs() -> (Array3<f32>, Array3<f32>) {
    (
        f32_3("sample", "embeddings.npy"),
        f32_3("sample", "segmentation_binarized.npy"),
    )
}

fn plda() -> Plda {
    Plda::from_pyannote_npz(
        &refdir("vbx").join("xvec_transform.npz"),
        &refdir("vbx").join("plda.npz"),
    )
    .unwrap()
}

fn max_abs_diff<'a>(
    a: impl IntoIterator<Item = &'a f64>,
    b: impl IntoIterator<Item = &'a f64>,
) -> f64 {
    a.into_iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Inactive (chunk, speaker) → -2, as the pipeline does before reconstruction.
fn mask_inactive(h: &Array2<i64>, seg: &Array3<f32>) -> Array2<i32> {
    let active = seg.map_axis(Axis(1), |f| f.iter().any(|&v| v > 0.5));
    Array2::from_shape_fn(
        h.dim(),
        |(c, s)| if active[[c, s]] { h[[c, s]] as i32 } else { -2 },
    )
}

/// Tolerance: exact.
#[test]
fn speaker_count_matches() {
    let (_, seg) = inputs();
    let want = npy::<u8>("sample", "speaker_count.npy");
    let got = speaker_count(seg.view(), 1.0).unwrap();
    assert_eq!(got.len(), 1779);
    assert_eq!(got.as_slice(), want.as_slice().unwrap());
}

/// Tolerance: exact (training set and AHC labels, including label order).
#[test]
fn training_filter_and_ahc_labels_match() {
    let (emb, seg) = inputs();
    let train = training_indices(emb.view(), seg.view(), 0.2);
    let want = i64_2("vbx", "train_chunk_speaker.npy");
    let want: Vec<(usize, usize)> = want
        .rows()
        .into_iter()
        .map(|r| (r[0] as usize, r[1] as usize))
        .collect();
    assert_eq!(train, want);
    let x = Array2::from_shape_fn((train.len(), emb.dim().2), |(i, d)| {
        emb[[train[i].0, train[i].1, d]]
    });
    let labels: Vec<i64> = ahc_labels(x.view(), 0.6)
        .into_iter()
        .map(|l| l as i64)
        .collect();
    assert_eq!(
        labels,
        npy::<i64>("vbx", "ahc_labels.npy")
            .into_raw_vec_and_offset()
            .0
    );
}

/// Tolerance: phi ≤ 1e-9 relative; features ≤ 1e-9 relative to the largest
/// |feature|, after aligning each eigenvector's arbitrary sign.
#[test]
fn plda_phi_and_features_match() {
    let (emb, seg) = inputs();
    let p = plda();
    let phi = f64_1("vbx", "phi.npy");
    let rel_phi = p
        .phi()
        .iter()
        .zip(&phi)
        .map(|(a, b)| ((a - b) / b).abs())
        .fold(0.0, f64::max);
    assert!(rel_phi <= 1e-9, "phi rel diff {rel_phi:e}");
    let train = training_indices(emb.view(), seg.view(), 0.2);
    let x = Array2::from_shape_fn((train.len(), 192), |(i, d)| {
        emb[[train[i].0, train[i].1, d]]
    });
    let got = p.transform(x.view()).unwrap();
    let want = f64_2("vbx", "plda_features.npy");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut worst = 0.0f64;
    for j in 0..want.ncols() {
        let sign = if got.column(j).dot(&want.column(j)) < 0.0 {
            -1.0
        } else {
            1.0
        };
        let g = got.column(j).mapv(|v| v * sign);
        worst = worst.max(max_abs_diff(&g, want.column(j)));
    }
    eprintln!(
        "plda features: max |diff| / max |ref| = {:e}, phi rel {rel_phi:e}",
        worst / scale
    );
    assert!(worst / scale <= 1e-9);
    assert!(p.transform(Array2::<f32>::zeros((2, 191)).view()).is_err());
}

/// Tolerance: bit-identical features after save/load in our single-npz
/// format and in speakrs' plda_*.npy layout.
#[test]
fn plda_file_layouts_round_trip() {
    let dir = std::env::temp_dir().join(format!("gstspeakrs-plda-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = plda();
    p.save_npz(&dir.join("plda_all.npz")).unwrap();
    let q = Plda::from_npz(&dir.join("plda_all.npz")).unwrap();
    // speakrs layout, from the pyannote npz arrays.
    for (file, names) in [
        ("xvec_transform.npz", ["mean1", "mean2", "lda"]),
        ("plda.npz", ["mu", "tr", "psi"]),
    ] {
        let mut z =
            ndarray_npy::NpzReader::new(File::open(refdir("vbx").join(file)).unwrap()).unwrap();
        for n in names {
            let out = dir.join(format!("plda_{n}.npy"));
            if n == "mean1" {
                let a: ArrayD<f32> = z.by_name(n).unwrap();
                ndarray_npy::write_npy(&out, &a).unwrap();
            } else {
                let a: ArrayD<f64> = z.by_name(n).unwrap();
                ndarray_npy::write_npy(&out, &a).unwrap();
            }
        }
    }
    let r = Plda::from_npy_dir(&dir).unwrap();
    let (emb, _) = inputs();
    let x = emb.index_axis(Axis(1), 1).to_owned();
    let a = p.transform(x.view()).unwrap();
    assert_eq!(a, q.transform(x.view()).unwrap());
    assert_eq!(a, r.transform(x.view()).unwrap());
    let missing = Plda::from_npy_dir(&dir.join("nope"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("plda_mean1.npy"), "{missing}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Tolerance: gamma and pi ≤ 1e-9 absolute (on pyannote's own features).
#[test]
fn vbx_gamma_pi_match() {
    let fea = f64_2("vbx", "plda_features.npy");
    let phi = f64_1("vbx", "phi.npy");
    let labels: Vec<usize> = npy::<i64>("vbx", "ahc_labels.npy")
        .iter()
        .map(|&l| l as usize)
        .collect();
    let out = cluster_vbx(&labels, fea.view(), phi.view(), &VbxParams::default()).unwrap();
    let dg = max_abs_diff(&out.gamma, &f64_2("vbx", "vbx_gamma.npy"));
    let dp = max_abs_diff(&out.pi, &f64_1("vbx", "vbx_pi.npy"));
    eprintln!(
        "vbx: gamma max diff {dg:e}, pi max diff {dp:e}, {} iterations",
        out.elbo.len()
    );
    assert!(dg <= 1e-9 && dp <= 1e-9);
}

/// Tolerance: hard clusters exact (inactive masked to -2, as the pipeline
/// does); centroids ≤ 2e-7 relative to max |centroid| (they are f32: two
/// ulps); soft scores ≤ 1e-9 absolute (f64).
#[test]
fn vbx_clustering_matches() {
    let (emb, seg) = inputs();
    let p = plda();
    let res = cluster(emb.view(), seg.view(), Some(&p), &ClusteringConfig::vbx()).unwrap();
    let raw = npy::<i8>("vbx", "hard_clusters.npy")
        .into_dimensionality::<Ix2>()
        .unwrap();
    let want = mask_inactive(&raw.mapv(i64::from), &seg);
    assert_eq!(res.hard_clusters, want);
    let c = f64_2("vbx", "centroids.npy");
    let scale = c.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let dc = max_abs_diff(&res.centroids.mapv(f64::from), &c) / scale;
    let soft = npy::<f64>("vbx", "soft_clusters.npy");
    let ds = res
        .soft_clusters
        .iter()
        .zip(soft.iter())
        .filter(|(_, b)| b.is_finite())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!("vbx clustering: centroid rel diff {dc:e} (f32 output), soft max diff {ds:e}");
    assert!(dc <= 2e-7, "centroid rel diff {dc:e}");
    assert!(ds <= 1e-9, "soft score diff {ds:e}");
}

/// Tolerance: hard clusters exact up to a label permutation (here the
/// identity); centroids ≤ 2e-7 relative (f32: two ulps). pyannote's NaN quirk (a NaN
/// embedding falls into cluster 0) is not reproduced: such speakers get -2;
/// on this sample the only NaN embeddings belong to inactive speakers, so
/// the masked reference is identical.
#[test]
fn ahc_mode_clustering_matches() {
    let (emb, seg) = inputs();
    let res = cluster(emb.view(), seg.view(), None, &ClusteringConfig::ahc()).unwrap();
    let want = mask_inactive(&i64_2("sample", "hard_clusters.npy"), &seg);
    assert_eq!(res.hard_clusters, want);
    let c = f32_2_as_f64("sample", "centroids.npy");
    let scale = c.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let dc = max_abs_diff(&res.centroids.mapv(f64::from), &c) / scale;
    eprintln!("ahc clustering: centroid rel diff {dc:e}");
    assert!(dc <= 2e-7, "centroid rel diff {dc:e}");
}

fn f32_2_as_f64(sub: &str, name: &str) -> Array2<f64> {
    npy::<f32>(sub, name)
        .into_dimensionality::<Ix2>()
        .unwrap()
        .mapv(f64::from)
}

/// Tolerance: exact, both from pyannote's hard clusters and from ours.
#[test]
fn reconstruction_matches() {
    let (emb, seg) = inputs();
    let count = npy::<u8>("sample", "speaker_count.npy")
        .into_raw_vec_and_offset()
        .0;
    let want = f32_2_as_f64("sample", "discrete_diarization.npy").mapv(|v| v as u8);
    let hard = i64_2("sample", "hard_clusters.npy").mapv(|v| v as i32);
    assert_eq!(
        reconstruct(seg.view(), hard.view(), &count, 1.0).unwrap(),
        want
    );
    let ours = cluster(emb.view(), seg.view(), None, &ClusteringConfig::ahc()).unwrap();
    assert_eq!(
        reconstruct(seg.view(), ours.hard_clusters.view(), &count, 1.0).unwrap(),
        want
    );
}

/// Tolerance: DER 0 against the reference RTTM, boundaries within half a
/// millisecond (the RTTM's 3-decimal rounding), and then the text
/// identical. Each check runs before the next, so a timing error fails as
/// DER or boundary error, not as a text difference.
#[test]
fn turns_match_reference_rttm() {
    let want_text = std::fs::read_to_string(refdir("sample").join("sample.rttm")).unwrap();
    let dd = f32_2_as_f64("sample", "discrete_diarization.npy").mapv(|v| v as u8);
    let t = turns(dd.view(), &FrameGrid::default(), 30.0);
    let text = format_rttm("sample", &t);
    let reference = parse_rttm(&want_text).unwrap();
    let r: Vec<Segment> = reference.iter().map(Segment::from).collect();
    let h: Vec<Segment> = parse_rttm(&text)
        .unwrap()
        .iter()
        .map(Segment::from)
        .collect();
    let d = score(&r, &h);
    // Unrounded turns: only the RTTM's 3-decimal rounding differs.
    let unrounded = score(&r, &t.iter().map(Segment::from).collect::<Vec<_>>());
    eprintln!(
        "sample: DER(own RTTM) = {:e}, DER(unrounded turns) = {:e}",
        d.der(),
        unrounded.der()
    );
    assert_eq!(d.der(), 0.0, "DER of our RTTM against pyannote's: {d:?}");
    assert!(unrounded.der() < 1e-3, "{unrounded:?}");
    assert_eq!(t.len(), reference.len(), "turn count");
    for (a, b) in t.iter().zip(&reference) {
        assert!(
            (a.start - b.start).abs() <= 5e-4 + 1e-9 && (a.end - b.end()).abs() <= 1e-3 + 1e-9,
            "turn {a:?} vs reference {b:?}"
        );
    }
    assert_eq!(text, want_text);
}

/// pyannote 3.1 AgglomerativeClustering.cluster incl. small-cluster merge
/// and the num/min/max dendrogram search; expected labels from running
/// pyannote 4.0.1's code (scipy 1.17) on the 37 training embeddings.
/// Tolerance: exact.
#[test]
fn agglomerative_constraints_match_pyannote() {
    use gstspeakrs::engine::clustering::agglomerative::pyannote_agglomerative;
    let (emb, seg) = inputs();
    let train = training_indices(emb.view(), seg.view(), 0.2);
    let x = Array2::from_shape_fn((train.len(), 192), |(i, d)| {
        emb[[train[i].0, train[i].1, d]]
    });
    let t31 = 0.7045654963945799;
    type Case = (f64, usize, usize, usize, Option<usize>, &'static str);
    let cases: [Case; 7] = [
        (
            t31,
            12,
            1,
            37,
            None,
            "0100001101010101010101010101010011010",
        ),
        (
            t31,
            12,
            3,
            3,
            Some(3),
            "1211112212121212121212120202020022021",
        ),
        (
            t31,
            12,
            4,
            37,
            None,
            "1311113313131313232323230303030033032",
        ),
        (
            0.3,
            12,
            1,
            37,
            None,
            "1311113313131313232323230304040044042",
        ),
        (0.3, 2, 1, 37, None, "1511115515131313232323230304040044042"),
        (0.3, 2, 1, 2, None, "0100001101010101010101010101010011010"),
        (
            0.6,
            12,
            5,
            5,
            Some(5),
            "1311113313131313232323230304040044042",
        ),
    ];
    for (t, mcs, min_c, max_c, num, want) in cases {
        let got: String = pyannote_agglomerative(x.view(), t, mcs, num, min_c, max_c)
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert_eq!(
            got, want,
            "threshold {t} mcs {mcs} min {min_c} max {max_c} num {num:?}"
        );
    }
}

/// Speaker-count constraints end to end (tolerance: exact counts).
#[test]
fn speaker_constraints() {
    let (emb, seg) = inputs();
    let p = plda();
    for (mode, plda) in [
        (ClusteringConfig::vbx(), Some(&p)),
        (ClusteringConfig::ahc(), None),
    ] {
        for n in [1usize, 2, 3] {
            let cfg = ClusteringConfig {
                num_speakers: Some(n),
                ..mode.clone()
            };
            let res = cluster(emb.view(), seg.view(), plda, &cfg).unwrap();
            assert_eq!(res.num_clusters(), n, "{mode:?} num_speakers {n}");
            let used = res.hard_clusters.iter().copied().max().unwrap();
            assert!(used < n as i32);
        }
        let cfg = ClusteringConfig {
            min_speakers: Some(3),
            max_speakers: Some(2),
            ..mode.clone()
        };
        assert!(cluster(emb.view(), seg.view(), plda, &cfg).is_err());
    }
}

fn seg_one_speaker(chunks: usize) -> Array3<f32> {
    let mut s = Array3::<f32>::zeros((chunks, 589, 3));
    s.slice_mut(ndarray::s![.., .., 0]).fill(1.0);
    s
}

/// Degenerate inputs give results or errors, never panics.
#[test]
fn degenerate_inputs_do_not_panic() {
    use gstspeakrs::engine::clustering::assign::NO_SPEAKER;
    use gstspeakrs::engine::clustering::ClusteringError;
    let cfg = ClusteringConfig::vbx();
    // No chunks at all.
    let empty_e = Array3::<f32>::zeros((0, 3, 4));
    let r = cluster(
        empty_e.view(),
        Array3::zeros((0, 589, 3)).view(),
        None,
        &cfg,
    )
    .unwrap();
    assert_eq!((r.hard_clusters.dim(), r.num_clusters()), ((0, 3), 0));
    // All-NaN embeddings: nobody trains, active speakers share speaker 0.
    let seg = seg_one_speaker(4);
    let nan = Array3::<f32>::from_elem((4, 3, 4), f32::NAN);
    let r = cluster(nan.view(), seg.view(), None, &cfg).unwrap();
    assert_eq!(r.num_clusters(), 1);
    assert!(r.hard_clusters.column(0).iter().all(|&h| h == 0));
    assert!(r.hard_clusters.column(1).iter().all(|&h| h == NO_SPEAKER));
    // One training embedding.
    let mut one = nan.clone();
    one.slice_mut(ndarray::s![0, 0, ..]).fill(1.0);
    assert_eq!(
        cluster(one.view(), seg.view(), None, &cfg)
            .unwrap()
            .num_clusters(),
        1
    );
    // Shape mismatch, missing PLDA, embedding size ≠ PLDA input size.
    let r = cluster(nan.view(), seg_one_speaker(3).view(), None, &cfg);
    assert!(matches!(r, Err(ClusteringError::Shape(_))));
    let mut two = Array3::<f32>::from_shape_fn((4, 3, 4), |(c, _, d)| ((c + d) % 3) as f32 + 0.5);
    two.slice_mut(ndarray::s![.., 1.., ..]).fill(f32::NAN);
    let r = cluster(two.view(), seg.view(), None, &cfg);
    assert!(matches!(r, Err(ClusteringError::MissingPlda)));
    let r = cluster(two.view(), seg.view(), Some(&plda()), &cfg);
    assert!(matches!(r, Err(ClusteringError::Plda(_))), "{r:?}");
}

/// Small AHC cases (labels checked against scipy 1.17 by hand-run).
#[test]
fn ahc_small_and_degenerate() {
    let x = ndarray::array![
        [1.0f32, 0.0],
        [0.99, 0.1],
        [0.0, 1.0],
        [0.1, 0.99],
        [0.98, 0.05]
    ];
    assert_eq!(ahc_labels(x.view(), 0.6), vec![0, 0, 1, 1, 0]);
    assert_eq!(ahc_labels(x.view(), 2.0), vec![0; 5]);
    assert!(ahc_labels(Array2::<f32>::zeros((0, 4)).view(), 0.6).is_empty());
    assert_eq!(ahc_labels(Array2::<f32>::ones((1, 4)).view(), 0.6), vec![0]);
    let nan = Array2::<f32>::from_elem((3, 2), f32::NAN);
    assert_eq!(ahc_labels(nan.view(), 0.6).len(), 3);
}
