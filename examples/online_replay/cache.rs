//! One loop of an eval set analysed once (segmentation + embeddings) and
//! cached, so that hours of replay need no inference.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use gstspeakrs::engine::config::{CHUNK_SECONDS, SAMPLE_RATE};
use gstspeakrs::engine::frontend::chunks::ChunkAnalysis;
use gstspeakrs::engine::frontend::inference::{self, ChunkJob, Shared};
use gstspeakrs::engine::loaded::LoadedModels;
use gstspeakrs::models::manifest::sha256_file;
use ndarray::{Array3, Axis};
use ndarray_npy::{NpzReader, NpzWriter};

/// One loop's chunks, as they are in every loop but the stream's end: the
/// chunks starting in the second of two concatenated loops.
fn analyse_loop(audio: &[f32], step: usize, pipeline: &LoadedModels) -> Vec<ChunkAnalysis> {
    let chunk = (CHUNK_SECONDS * SAMPLE_RATE as f64) as usize;
    let mut twice = audio.to_vec();
    twice.extend_from_slice(audio);
    twice.extend_from_slice(&audio[..chunk.min(audio.len())]);
    let per_loop = audio.len() / step;
    let shared = Arc::new(Shared::default());
    let (jobs, rx) = crossbeam_channel::bounded(16);
    let threads = inference::spawn(
        rx,
        &pipeline.segmenters,
        &pipeline.embedders,
        shared.clone(),
        8,
        16,
        // Streams that re-cluster embed every frame (`StreamConfig::embedding_frames`).
        usize::MAX,
    )
    .expect("inference threads");
    for index in per_loop..2 * per_loop {
        let start = index * step;
        let job = ChunkJob {
            index,
            start,
            audio: twice[start..start + chunk].into(),
        };
        jobs.send(job).expect("workers alive");
    }
    drop(jobs);
    threads.into_iter().for_each(|t| t.join().expect("worker"));
    if let Some(e) = shared.error.lock().unwrap().take() {
        panic!("{e}");
    }
    let mut analyses = shared.analyses.lock().unwrap();
    // The reorder buffer hands out chunks from index 0: fill the first loop in.
    for index in 0..per_loop {
        analyses.push(ChunkAnalysis::skipped(index, 0));
    }
    analyses
        .take_ready()
        .into_iter()
        .skip(per_loop)
        .map(|mut a| {
            a.index -= per_loop;
            a
        })
        .collect()
}

/// The analyses of one loop of `set` at `step` samples, from the cache when
/// it holds them for these models, else analysed and cached.
pub fn cached_analyses(
    set: &Path,
    audio: &[f32],
    step: usize,
    pipeline: &LoadedModels,
) -> Vec<ChunkAnalysis> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"))
        .join("gst-speakrs");
    let name = set.file_name().unwrap().to_string_lossy().to_string();
    // Other models, other analyses: the cache is named after both models.
    let models = &pipeline.models;
    let fingerprint: String = [&models.segmentation, &models.embedding]
        .iter()
        .map(|p| sha256_file(p).expect("model checksum")[..12].to_string())
        .collect::<Vec<_>>()
        .join("-");
    let path = cache.join(format!("replay-{name}-{step}-{fingerprint}.npz"));
    if let Ok(file) = std::fs::File::open(&path) {
        let mut npz = NpzReader::new(file).expect("npz");
        let activity: Array3<f32> = npz.by_name("activity").expect("activity");
        let embeddings: Array3<f32> = npz.by_name("embeddings").expect("embeddings");
        return activity
            .axis_iter(Axis(0))
            .zip(embeddings.axis_iter(Axis(0)))
            .enumerate()
            .map(|(index, (a, e))| ChunkAnalysis {
                index,
                activity: a.to_owned(),
                embeddings: e.to_owned(),
            })
            .collect();
    }
    let started = Instant::now();
    let chunks = analyse_loop(audio, step, pipeline);
    eprintln!(
        "analysed {} chunks in {:.0} s; cached in {}",
        chunks.len(),
        started.elapsed().as_secs_f64(),
        path.display()
    );
    let stack = |f: &dyn Fn(&ChunkAnalysis) -> ndarray::ArrayView2<f32>| {
        let views: Vec<_> = chunks.iter().map(f).collect();
        ndarray::stack(Axis(0), &views).expect("same shapes")
    };
    std::fs::create_dir_all(&cache).expect("cache dir");
    let mut npz = NpzWriter::new(std::fs::File::create(&path).expect("cache file"));
    npz.add_array("activity", &stack(&|c| c.activity.view()))
        .unwrap();
    npz.add_array("embeddings", &stack(&|c| c.embeddings.view()))
        .unwrap();
    npz.finish().unwrap();
    chunks
}
