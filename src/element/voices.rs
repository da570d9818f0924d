//! The element's voices file (`voices-location`): read at READY→PAUSED
//! into the registry the analysis starts from, written back (`voices-save`)
//! at EOS and when the element stops.

use std::path::PathBuf;

use crate::engine::loaded::LoadedModels;
use crate::engine::registry::Registry;
use crate::models::voices::{check_writable, ModelIdentity, Voices, VoicesError};

/// Where the speakers met are saved, and for which models.
#[derive(Debug, Clone)]
pub struct VoicesStore {
    pub path: PathBuf,
    identity: ModelIdentity,
}

impl VoicesStore {
    /// Replaces the file with what `registry` knows (it holds everything
    /// the file held: loading put it there).
    pub fn save(&self, registry: &Registry) -> Result<(), VoicesError> {
        registry.to_voices(self.identity.clone()).write(&self.path)
    }
}

/// The registry to start from and, with `save`, where to save it. A missing
/// file is an error unless it is to be saved (then it is started); every
/// other fault is an error, and the file is left untouched.
pub fn open(
    path: Option<PathBuf>,
    save: bool,
    threshold: f64,
    models: &LoadedModels,
) -> Result<(Registry, Option<VoicesStore>), VoicesError> {
    let Some(path) = path else {
        return Ok((Registry::default(), None));
    };
    let identity = ModelIdentity::of(&models.models).map_err(|source| VoicesError::Models {
        path: path.clone(),
        source,
    })?;
    let voices = match Voices::read(&path, &identity) {
        Ok(v) => v,
        Err(VoicesError::Missing { .. }) if save => Voices::new(identity.clone()),
        Err(e) => return Err(e),
    };
    if save {
        check_writable(&path)?;
    }
    let registry = Registry::from_voices(&voices, threshold);
    Ok((registry, save.then_some(VoicesStore { path, identity })))
}
