//! Fits the PLDA that VBx needs for the CAM++ embedding model (none exists
//! upstream) from the single-speaker recordings of `../shared/eval/speakers`,
//! and writes it as one npz (mean1, mean2, lda, mu, tr, psi).
//!
//!     cargo run --release --example train_plda -- [--kind spherical|twocov] [--dim 128]
//!         [--ratio R] [--speakers DIR] [--out models/campplus-plda.npz] [--features FILE]
//!
//! `--features FILE` instead writes the pieces' CAM++ input features (npz
//! of `[T, 80]` arrays `f0`, `f1`, …) for tools/calibrate_int8.py.
//!
//! Each utterance is cut into 1.5–3 s pieces (a deterministic sequence), as
//! long as the speaker turns the embeddings of a conversation come from,
//! and each piece is embedded the way the pipeline embeds a speaker active
//! over it (the engine's own chunking, mean and frame selection).

#[path = "common/wav.rs"]
mod wav;
use std::path::PathBuf;

use crate::wav::read_wav_16k;
use gstspeakrs::engine::clustering::plda::Plda;
use gstspeakrs::engine::clustering::plda_fit::{fit, PldaKind};
use gstspeakrs::engine::config::{CHUNK_SAMPLES, MAX_EMBEDDING_FBANK_FRAMES};
use gstspeakrs::engine::frontend::embedding::{span_mask, speaker_features, Embedder};
use gstspeakrs::engine::frontend::fbank::Fbank;
use gstspeakrs::models::{pool, ModelSet, SessionConfig};

struct Args {
    kind: String,
    dim: usize,
    ratio: Option<f64>,
    speakers: PathBuf,
    out: PathBuf,
    features: Option<PathBuf>,
}

fn parse_args() -> Args {
    let mut args = Args {
        kind: "spherical".into(),
        dim: 128,
        ratio: None,
        speakers: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/eval/speakers"),
        out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/campplus-plda.npz"),
        features: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--kind" => args.kind = value,
            "--dim" => args.dim = value.parse().expect("--dim: integer"),
            "--ratio" => args.ratio = Some(value.parse().expect("--ratio: number")),
            "--speakers" => args.speakers = value.into(),
            "--out" => args.out = value.into(),
            "--features" => args.features = Some(value.into()),
            _ => panic!("unknown flag {flag}"),
        }
    }
    args
}

/// Features of one piece as the pipeline computes a speaker's: the 10 s
/// chunk around it (zero-padded past the utterance's end, as the last
/// chunk of a stream is), with the piece as the speaker's active span,
/// through the engine's own selection (`speaker_features`).
fn piece_features(fbank: &Fbank, audio: &[f32], start: usize, len: usize) -> ndarray::Array2<f32> {
    let chunk_start = (start + len / 2)
        .saturating_sub(CHUNK_SAMPLES / 2)
        .min(audio.len().saturating_sub(CHUNK_SAMPLES));
    let mut chunk = audio[chunk_start..(chunk_start + CHUNK_SAMPLES).min(audio.len())].to_vec();
    chunk.resize(CHUNK_SAMPLES, 0.0);
    let from = start - chunk_start;
    let mask = span_mask(from, from + len);
    speaker_features(
        fbank.log_mel(&chunk),
        &[Some(mask)],
        MAX_EMBEDDING_FBANK_FRAMES,
    )
    .pop()
    .flatten()
    .expect("a piece with frames")
}

/// Piece lengths in samples, 1.5–3 s, from a fixed linear congruential sequence.
fn piece_lengths(seed: &mut u64) -> usize {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let unit = (*seed >> 33) as f64 / (1u64 << 31) as f64;
    (24_000.0 + unit * 24_000.0) as usize
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args();
    let models = ModelSet::resolve(&Default::default())?;
    let session = pool::session(&SessionConfig {
        model: models.embedding,
        provider: Default::default(),
        threads: 2,
        replica: 0,
    })?;
    let embedder = Embedder::new(session)?;
    let fbank = Fbank::new();
    let index = std::fs::read_to_string(args.speakers.join("utt2spk.tsv"))?;
    let (mut embeddings, mut labels, mut names) = (Vec::new(), Vec::new(), Vec::<String>::new());
    let mut seed = 20261129u64;
    let mut features = match &args.features {
        Some(path) => Some(ndarray_npy::NpzWriter::new(std::fs::File::create(path)?)),
        None => None,
    };
    let mut pieces = 0;
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (wav, speaker) = (cols[0], cols[1]);
        let label = names.iter().position(|n| n == speaker).unwrap_or_else(|| {
            names.push(speaker.into());
            names.len() - 1
        });
        let audio = read_wav_16k(&args.speakers.join(wav))?;
        let mut start = 0;
        loop {
            let len = piece_lengths(&mut seed);
            if start + len > audio.len() {
                break;
            }
            let feats = piece_features(&fbank, &audio, start, len);
            if let Some(npz) = &mut features {
                npz.add_array(format!("f{pieces}"), &feats)?;
                pieces += 1;
                start += len;
                continue;
            }
            if let Some(e) = embedder.embed(feats.view())? {
                embeddings.push(e);
                labels.push(label);
            }
            start += len;
        }
    }
    if let (Some(npz), Some(path)) = (features, &args.features) {
        npz.finish()?;
        println!(
            "wrote the features of {pieces} pieces to {}",
            path.display()
        );
        return Ok(());
    }
    println!(
        "{} embeddings of {} speakers",
        embeddings.len(),
        names.len()
    );
    let kind = match args.kind.as_str() {
        "spherical" => PldaKind::Spherical { ratio: args.ratio },
        "twocov" => PldaKind::TwoCovariance,
        other => return Err(format!("unknown --kind {other}").into()),
    };
    let fitted = fit(&embeddings, &labels, args.dim, kind)?;
    Plda::from_arrays(fitted.arrays)?.save_npz(&args.out)?;
    println!(
        "between/within variance ratio measured in PLDA space: {:.3}",
        fitted.measured_ratio
    );
    println!("wrote {} ({kind:?}, {} dims)", args.out.display(), args.dim);
    Ok(())
}
