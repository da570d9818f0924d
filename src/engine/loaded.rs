//! Loaded models and clustering settings: everything a stream needs that is
//! not per-stream state. Cheap to clone (sessions are shared).

use std::sync::Arc;

use crate::engine::clustering::plda::Plda;
use crate::engine::clustering::ClusteringConfig;
use crate::engine::frontend::embedding::Embedder;
use crate::engine::frontend::segmentation::Segmenter;
use crate::models::provider::ProviderOptions;
use crate::models::{pool, ModelError, ModelSet, ModelSetRequest, SessionConfig};

#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    pub models: ModelSetRequest,
    pub provider: ProviderOptions,
    /// Inference threads (workers that segment and embed); 0 = all cores.
    pub threads: usize,
    pub clustering: ClusteringConfig,
}

#[derive(Clone)]
pub struct LoadedModels {
    /// One segmenter and one embedder per inference thread, each with its
    /// own session: the models run best one request per core rather than
    /// one request split over cores.
    pub segmenters: Vec<Arc<Segmenter>>,
    pub embedders: Vec<Arc<Embedder>>,
    /// `None` when the model set has no PLDA: clustering then falls back to
    /// pyannote 3.1's agglomerative clustering.
    pub plda: Option<Arc<Plda>>,
    pub clustering: ClusteringConfig,
    pub models: ModelSet,
}

impl LoadedModels {
    pub fn load(config: &EngineConfig) -> Result<Self, ModelError> {
        let models = ModelSet::resolve(&config.models)?;
        let threads = if config.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            config.threads
        };
        let session = |model: &std::path::Path, replica: usize| {
            pool::session(&SessionConfig {
                model: model.to_path_buf(),
                provider: config.provider.clone(),
                threads: 1,
                replica,
            })
        };
        let segmenters = per_thread(threads, |r| match &models.segmentation_parts {
            Some(parts) => Segmenter::split(
                session(&parts.filterbank, r)?,
                session(&parts.after_filterbank, r)?,
            ),
            None => Segmenter::new(session(&models.segmentation, r)?),
        })?;
        let embedders = per_thread(threads, |r| Embedder::new(session(&models.embedding, r)?))?;
        let embedder = &embedders[0];
        let plda = match &models.plda {
            Some(path) => {
                let plda = load_plda(path).map_err(|e| ModelError::Shape {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                if plda.input_dim() != embedder.dimension() {
                    return Err(ModelError::Shape {
                        path: path.clone(),
                        reason: format!(
                            "PLDA expects {}-d embeddings but {} gives {}-d",
                            plda.input_dim(),
                            models.embedding.display(),
                            embedder.dimension()
                        ),
                    });
                }
                Some(Arc::new(plda))
            }
            None => None,
        };
        Ok(Self {
            segmenters,
            embedders,
            plda,
            clustering: config.clustering.clone(),
            models,
        })
    }
}

/// A PLDA in any of the layouts users bring: a speakrs directory of
/// `plda_*.npy`, pyannote's `plda.npz` beside `xvec_transform.npz`, or our
/// single npz with all six arrays.
pub fn load_plda(
    path: &std::path::Path,
) -> Result<Plda, crate::engine::clustering::plda::PldaError> {
    if path.is_dir() {
        return Plda::from_npy_dir(path);
    }
    let xvec = path.with_file_name("xvec_transform.npz");
    if path.file_name().is_some_and(|n| n == "plda.npz") && xvec.exists() {
        return Plda::from_pyannote_npz(&xvec, path);
    }
    Plda::from_npz(path)
}

/// One `T` per inference thread (`make` gets the thread's replica number).
fn per_thread<T>(
    threads: usize,
    make: impl Fn(usize) -> Result<T, ModelError>,
) -> Result<Vec<Arc<T>>, ModelError> {
    (0..threads).map(|r| make(r).map(Arc::new)).collect()
}
