//! PLDA front-end of VBx (docs/design.md §6): x-vector transform + PLDA
//! whitening, as pyannote's `utils/vbx.py::vbx_setup` and `core/plda.py`.
//!
//! Three on-disk layouts are accepted: pyannote's `xvec_transform.npz`
//! (mean1, mean2, lda) + `plda.npz` (mu, tr, psi); speakrs' directory of
//! `plda_{mean1,mean2,lda,mu,tr,psi}.npy`; and one npz holding all six
//! (the format `save_npz` writes). Arrays may be float32 or float64.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::{Array1, Array2, ArrayD, ArrayView1, ArrayView2, Ix1, Ix2};
use ndarray_npy::{NpzWriter, ReadNpyError, ReadNpyExt};

use crate::engine::clustering::ahc::norm_f32;

#[derive(Debug, thiserror::Error)]
pub enum PldaError {
    #[error("{}: {source}", file.display())]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: array `{array}`: {msg}", file.display())]
    Array {
        file: PathBuf,
        array: String,
        msg: String,
    },
    #[error("PLDA linear algebra failed: {0}")]
    Linalg(String),
    #[error("embedding dimension {got} does not match the PLDA input dimension {expected}")]
    DimMismatch { expected: usize, got: usize },
}

/// The six arrays of pyannote's two files: `x1 = sqrt(D_in) l2(x - mean1)`,
/// `x2 = sqrt(D_lda) l2(x1 lda - mean2)`; PLDA `mu`, `tr` (rows = basis),
/// `psi` (between-class variances in that basis).
#[derive(Debug, Clone)]
pub struct PldaArrays {
    pub mean1: Array1<f64>,
    pub mean2: Array1<f64>,
    pub lda: Array2<f64>,
    pub mu: Array1<f64>,
    pub tr: Array2<f64>,
    pub psi: Array1<f64>,
    /// mean1 is float32 (as in pyannote's file): the first centring and
    /// norm then run in float32, exactly like numpy does.
    pub mean1_f32: bool,
}

/// Loaded PLDA model with the precomputed eigen-decomposition.
#[derive(Debug, Clone)]
pub struct Plda {
    a: PldaArrays,
    /// Rows = generalised eigenvectors of (B, W), eigenvalue-descending.
    transform: Array2<f64>,
    phi: Array1<f64>,
}

const NAMES: [&str; 6] = ["mean1", "mean2", "lda", "mu", "tr", "psi"];

fn arr_err(file: &Path, array: &str, msg: impl Into<String>) -> PldaError {
    PldaError::Array {
        file: file.to_path_buf(),
        array: array.to_string(),
        msg: msg.into(),
    }
}

fn open(file: &Path) -> Result<File, PldaError> {
    File::open(file).map_err(|source| PldaError::Io {
        file: file.to_path_buf(),
        source,
    })
}

/// The most bytes one PLDA array may take (pyannote's largest is 512 KiB).
const MAX_ARRAY_BYTES: u64 = 64 << 20;

/// Reads each named array of an npz (`name` or `name.npy` inside it);
/// returns (array, was_f32) as [`read_npy`].
fn read_npz(file: &Path, names: &[&str]) -> Result<Vec<(ArrayD<f64>, bool)>, PldaError> {
    let mut zip =
        zip::ZipArchive::new(open(file)?).map_err(|e| arr_err(file, "*", e.to_string()))?;
    let mut out = Vec::new();
    for &name in names {
        let index = zip
            .index_for_name(name)
            .or_else(|| zip.index_for_name(&format!("{name}.npy")))
            .ok_or_else(|| arr_err(file, name, "not in the npz"))?;
        let entry = zip
            .by_index(index)
            .map_err(|e| arr_err(file, name, e.to_string()))?;
        out.push(parse_npy(file, name, &read_limited(file, name, entry)?)?);
    }
    Ok(out)
}

/// A `.npy` file as float64, falling back to float32; returns (array, was_f32).
fn read_npy(file: &Path, name: &str) -> Result<(ArrayD<f64>, bool), PldaError> {
    parse_npy(file, name, &read_limited(file, name, open(file)?)?)
}

fn read_limited(file: &Path, name: &str, reader: impl Read) -> Result<Vec<u8>, PldaError> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_ARRAY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| arr_err(file, name, e.to_string()))?;
    if bytes.len() as u64 > MAX_ARRAY_BYTES {
        return Err(arr_err(
            file,
            name,
            format!(
                "larger than {} MiB: not a PLDA array",
                MAX_ARRAY_BYTES >> 20
            ),
        ));
    }
    Ok(bytes)
}

fn parse_npy(file: &Path, name: &str, bytes: &[u8]) -> Result<(ArrayD<f64>, bool), PldaError> {
    npy_fits(bytes).map_err(|msg| arr_err(file, name, msg))?;
    let err = |e: ReadNpyError| arr_err(file, name, e.to_string());
    match ArrayD::<f64>::read_npy(bytes) {
        Ok(a) => Ok((a, false)),
        Err(ReadNpyError::WrongDescriptor(_)) => ArrayD::<f32>::read_npy(bytes)
            .map(|a| (a.mapv(f64::from), true))
            .map_err(err),
        Err(e) => Err(err(e)),
    }
}

/// Refuses an npy whose header claims more than the bytes hold:
/// ndarray-npy allocates the header length it reads, and then the
/// array's declared size, before reading either, so a corrupt or hostile
/// file could ask for gigabytes (found by `fuzz/fuzz_targets/plda.rs`).
/// Anything it cannot make out is left for ndarray-npy to reject.
fn npy_fits(bytes: &[u8]) -> Result<(), String> {
    if bytes.get(..6) != Some(b"\x93NUMPY") {
        return Ok(());
    }
    let (len_bytes, header_start) = match bytes.get(6) {
        Some(1) => (2, 10),
        Some(2 | 3) => (4, 12),
        _ => return Ok(()),
    };
    let Some(len) = bytes.get(8..8 + len_bytes) else {
        return Ok(());
    };
    let header_len = len
        .iter()
        .rev()
        .fold(0usize, |n, &b| (n << 8) | usize::from(b));
    let data_start = header_start + header_len;
    let Some(header) = bytes.get(header_start..data_start) else {
        return Err(format!(
            "npy header of {header_len} bytes in {} bytes",
            bytes.len()
        ));
    };
    // The element count from `'shape': (a, b, ...)`; every accepted
    // element type (float32, float64) takes at least 4 bytes.
    let header = String::from_utf8_lossy(header);
    let Some(shape) = header
        .split_once("'shape'")
        .and_then(|(_, rest)| rest.split_once('('))
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(tuple, _)| tuple)
    else {
        return Ok(());
    };
    let mut count: usize = 1;
    for dim in shape.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let Ok(dim) = dim.parse::<usize>() else {
            return Ok(());
        };
        count = count.saturating_mul(dim);
    }
    let data = bytes.len() - data_start;
    if count.saturating_mul(4) > data {
        return Err(format!(
            "npy header declares {count} elements, but only {data} bytes of data follow"
        ));
    }
    Ok(())
}

fn to1(file: &Path, name: &str, a: ArrayD<f64>) -> Result<Array1<f64>, PldaError> {
    let shape = a.shape().to_vec();
    a.into_dimensionality::<Ix1>()
        .map_err(|_| arr_err(file, name, format!("expected 1-D, got shape {shape:?}")))
}

fn to2(file: &Path, name: &str, a: ArrayD<f64>) -> Result<Array2<f64>, PldaError> {
    let shape = a.shape().to_vec();
    a.into_dimensionality::<Ix2>()
        .map_err(|_| arr_err(file, name, format!("expected 2-D, got shape {shape:?}")))
}

impl Plda {
    /// pyannote's pair `xvec_transform.npz` + `plda.npz`.
    pub fn from_pyannote_npz(xvec_transform: &Path, plda: &Path) -> Result<Self, PldaError> {
        let mut a = read_npz(xvec_transform, &NAMES[..3])?;
        a.extend(read_npz(plda, &NAMES[3..])?);
        let files = [
            xvec_transform,
            xvec_transform,
            xvec_transform,
            plda,
            plda,
            plda,
        ];
        Self::from_loaded(a, &files)
    }

    /// speakrs layout: `dir/plda_{mean1,mean2,lda,mu,tr,psi}.npy`.
    pub fn from_npy_dir(dir: &Path) -> Result<Self, PldaError> {
        let paths: Vec<PathBuf> = NAMES
            .iter()
            .map(|n| dir.join(format!("plda_{n}.npy")))
            .collect();
        let a = NAMES
            .iter()
            .zip(&paths)
            .map(|(n, p)| read_npy(p, n))
            .collect::<Result<Vec<_>, _>>()?;
        let files: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
        Self::from_loaded(a, &files)
    }

    /// One npz holding all six arrays (written by [`Plda::save_npz`]).
    pub fn from_npz(file: &Path) -> Result<Self, PldaError> {
        Self::from_loaded(read_npz(file, &NAMES)?, &[file; 6])
    }

    fn from_loaded(mut a: Vec<(ArrayD<f64>, bool)>, files: &[&Path]) -> Result<Self, PldaError> {
        let mut take = |i: usize| std::mem::take(&mut a[i].0);
        let (m1, m2, lda) = (take(0), take(1), take(2));
        let (mu, tr, psi) = (take(3), take(4), take(5));
        let mean1_f32 = a[0].1;
        let (f, n) = (files, NAMES);
        let arrays = PldaArrays {
            mean1: to1(f[0], n[0], m1)?,
            mean2: to1(f[1], n[1], m2)?,
            lda: to2(f[2], n[2], lda)?,
            mu: to1(f[3], n[3], mu)?,
            tr: to2(f[4], n[4], tr)?,
            psi: to1(f[5], n[5], psi)?,
            mean1_f32,
        };
        Self::build(arrays, files)
    }

    /// Builds from in-memory arrays (validated like files are), e.g. a
    /// freshly trained PLDA.
    pub fn from_arrays(arrays: PldaArrays) -> Result<Self, PldaError> {
        Self::build(arrays, &[Path::new("<memory>"); 6])
    }

    /// The six source arrays (for saving in another layout).
    pub fn arrays(&self) -> &PldaArrays {
        &self.a
    }

    fn build(a: PldaArrays, files: &[&Path]) -> Result<Self, PldaError> {
        fn finite<D: ndarray::Dimension>(x: &ndarray::Array<f64, D>) -> bool {
            x.iter().all(|v| v.is_finite())
        }
        let (d_in, d_lda) = a.lda.dim();
        let shapes = [
            a.mean1.shape(),
            a.mean2.shape(),
            a.lda.shape(),
            a.mu.shape(),
            a.tr.shape(),
            a.psi.shape(),
        ];
        let want: [&[usize]; 6] = [
            &[d_in],
            &[d_lda],
            &[d_in, d_lda],
            &[d_lda],
            &[d_lda, d_lda],
            &[d_lda],
        ];
        let ok = [
            finite(&a.mean1),
            finite(&a.mean2),
            finite(&a.lda),
            finite(&a.mu),
            finite(&a.tr),
            finite(&a.psi),
        ];
        for i in 0..6 {
            if shapes[i] != want[i] || d_in == 0 || d_lda == 0 {
                let msg = format!("shape {:?}, expected {:?} (from lda)", shapes[i], want[i]);
                return Err(arr_err(files[i], NAMES[i], msg));
            }
            if !ok[i] {
                return Err(arr_err(files[i], NAMES[i], "contains NaN or inf"));
            }
        }
        if a.psi.iter().any(|&p| p <= 0.0) {
            return Err(arr_err(files[5], "psi", "must be > 0"));
        }
        let (transform, phi) = generalized_eigen(&a.tr, &a.psi)?;
        Ok(Plda { a, transform, phi })
    }

    /// Writes the single-file layout read by [`Plda::from_npz`].
    pub fn save_npz(&self, file: &Path) -> Result<(), PldaError> {
        let io = |e: std::io::Error| PldaError::Io {
            file: file.to_path_buf(),
            source: e,
        };
        let werr = |e: ndarray_npy::WriteNpzError| arr_err(file, "*", e.to_string());
        let mut npz = NpzWriter::new(File::create(file).map_err(io)?);
        if self.a.mean1_f32 {
            npz.add_array("mean1", &self.a.mean1.mapv(|v| v as f32))
                .map_err(werr)?;
        } else {
            npz.add_array("mean1", &self.a.mean1).map_err(werr)?;
        }
        npz.add_array("mean2", &self.a.mean2).map_err(werr)?;
        npz.add_array("lda", &self.a.lda).map_err(werr)?;
        npz.add_array("mu", &self.a.mu).map_err(werr)?;
        npz.add_array("tr", &self.a.tr).map_err(werr)?;
        npz.add_array("psi", &self.a.psi).map_err(werr)?;
        npz.finish().map_err(werr)?;
        Ok(())
    }

    /// Embedding dimension the PLDA expects (e.g. 192 for CAM++).
    pub fn input_dim(&self) -> usize {
        self.a.lda.nrows()
    }
    /// PLDA feature dimension (`D_lda`, 128 for pyannote's files).
    pub fn lda_dim(&self) -> usize {
        self.a.lda.ncols()
    }
    /// Between-class eigenvalues Φ, descending.
    pub fn phi(&self) -> ArrayView1<'_, f64> {
        self.phi.view()
    }
    /// T (rows = eigenvectors; sign normalised so each row's largest
    /// component is positive — eigenvector signs are arbitrary and VBx is
    /// invariant to them).
    pub fn transform_matrix(&self) -> ArrayView2<'_, f64> {
        self.transform.view()
    }

    /// PLDA-space features of embeddings `[n, D_in]` → `[n, D_lda]`:
    /// `x1 = sqrt(D_in) l2norm(x - mean1)`, `x2 = sqrt(D_lda) l2norm(x1 lda - mean2)`,
    /// `fea = (x2 - mu) Tᵀ`.
    pub fn transform(&self, x: ArrayView2<f32>) -> Result<Array2<f64>, PldaError> {
        let d_in = self.input_dim();
        if x.ncols() != d_in {
            return Err(PldaError::DimMismatch {
                expected: d_in,
                got: x.ncols(),
            });
        }
        let mut x1 = Array2::<f64>::zeros((x.nrows(), d_in));
        let s_in = (d_in as f64).sqrt();
        for (row, mut out) in x.rows().into_iter().zip(x1.rows_mut()) {
            if self.a.mean1_f32 {
                let d: Vec<f32> = row
                    .iter()
                    .zip(&self.a.mean1)
                    .map(|(&v, &m)| v - m as f32)
                    .collect();
                let norm = norm_f32(&d);
                let norm = if norm > 0.0 { norm } else { 1.0 };
                out.iter_mut()
                    .zip(&d)
                    .for_each(|(o, &v)| *o = (v / norm) as f64 * s_in);
            } else {
                let d: Vec<f64> = row
                    .iter()
                    .zip(&self.a.mean1)
                    .map(|(&v, &m)| v as f64 - m)
                    .collect();
                let norm = d.iter().map(|v| v * v).sum::<f64>().sqrt();
                let norm = if norm > 0.0 { norm } else { 1.0 };
                out.iter_mut()
                    .zip(&d)
                    .for_each(|(o, &v)| *o = v / norm * s_in);
            }
        }
        let mut x2 = x1.dot(&self.a.lda) - &self.a.mean2;
        let s_lda = (self.lda_dim() as f64).sqrt();
        for mut row in x2.rows_mut() {
            let norm = row.dot(&row).sqrt();
            let norm = if norm > 0.0 { norm } else { 1.0 };
            row.mapv_inplace(|v| v / norm * s_lda);
        }
        Ok((x2 - &self.a.mu).dot(&self.transform.t()))
    }
}

/// Solves `B v = λ W v` with `W = (trᵀ tr)⁻¹`, `B = (trᵀ diag(1/psi) tr)⁻¹`
/// (scipy `eigh(B, W)`): Cholesky `W = L Lᵀ`, symmetric eigen of
/// `L⁻¹ B L⁻ᵀ`, back-substitution `v = L⁻ᵀ y` (so `vᵀ W v = 1`).
fn generalized_eigen(
    tr: &Array2<f64>,
    psi: &Array1<f64>,
) -> Result<(Array2<f64>, Array1<f64>), PldaError> {
    let d = tr.nrows();
    let t = DMatrix::from_fn(d, d, |i, j| tr[[i, j]]);
    let lin = |m: &str| PldaError::Linalg(format!("{m} is singular"));
    let w = (t.transpose() * &t)
        .try_inverse()
        .ok_or_else(|| lin("trᵀ tr"))?;
    let scaled = DMatrix::from_fn(d, d, |i, j| tr[[j, i]] / psi[j]);
    let b = (scaled * &t)
        .try_inverse()
        .ok_or_else(|| lin("trᵀ diag(1/psi) tr"))?;
    let w = (&w + w.transpose()) * 0.5;
    let chol = w
        .cholesky()
        .ok_or_else(|| PldaError::Linalg("W is not positive definite".into()))?;
    let l = chol.l();
    let l_inv = l
        .clone()
        .try_inverse()
        .ok_or_else(|| lin("cholesky factor"))?;
    let c = &l_inv * b * l_inv.transpose();
    let c = (&c + c.transpose()) * 0.5;
    let eig = SymmetricEigen::new(c);
    let v = l_inv.transpose() * &eig.eigenvectors;
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let mut transform = Array2::<f64>::zeros((d, d));
    let mut phi = Array1::<f64>::zeros(d);
    for (r, &k) in order.iter().enumerate() {
        phi[r] = eig.eigenvalues[k];
        let col = v.column(k);
        let big = col
            .iter()
            .copied()
            .fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        let sign = if big < 0.0 { -1.0 } else { 1.0 };
        for j in 0..d {
            transform[[r, j]] = sign * col[j];
        }
    }
    Ok((transform, phi))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An npy v2 file: header `dict` padded as numpy pads it, then `data`.
    fn npy(header_len: Option<u32>, dict: &str, data: &[u8]) -> Vec<u8> {
        let mut out = b"\x93NUMPY\x02\x00".to_vec();
        let header = format!("{dict}\n");
        let len = header_len.unwrap_or(header.len() as u32);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    const DICT: &str = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";

    #[test]
    fn an_npy_claiming_more_than_it_holds_is_refused_before_anything_is_allocated() {
        let data: Vec<u8> = [1.0f64, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let file = Path::new("plda_mu.npy");
        let (good, f32) = parse_npy(file, "mu", &npy(None, DICT, &data)).expect("a valid npy");
        assert_eq!((good.as_slice().unwrap(), f32), (&[1.0, 2.0][..], false));
        // A 3.6 GB header length (the fuzzer's case) and a 10¹⁰-element shape.
        let long_header = npy(Some(3_632_594_826), DICT, &data);
        let err = parse_npy(file, "mu", &long_header).unwrap_err().to_string();
        assert!(err.contains("npy header of 3632594826 bytes"), "{err}");
        let huge = DICT.replace("(2,)", "(100000, 100000)");
        let err = parse_npy(file, "mu", &npy(None, &huge, &data))
            .unwrap_err()
            .to_string();
        assert!(err.contains("declares 10000000000 elements"), "{err}");
    }
}
