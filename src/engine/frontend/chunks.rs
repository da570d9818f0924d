//! What the workers learn about each chunk, and the reorder buffer that
//! hands chunks to the stream's owner in index order.

use std::collections::BTreeMap;

use ndarray::{Array2, Array3, Axis};

use crate::engine::config::{FRAMES_PER_CHUNK, LOCAL_SPEAKERS};

/// Segmentation and embeddings of one chunk.
#[derive(Debug, Clone)]
pub struct ChunkAnalysis {
    /// Chunk index: the chunk starts at `index · step`.
    pub index: usize,
    /// Binary activity `[589, 3]` of the local speakers; NaN-filled when
    /// the chunk was skipped (a live stream falling behind).
    pub activity: Array2<f32>,
    /// One embedding per local speaker; NaN-filled when it has none.
    pub embeddings: Array2<f32>,
}

impl ChunkAnalysis {
    /// A chunk that was never analysed: it covers no frame and votes for nothing.
    pub fn skipped(index: usize, dimension: usize) -> Self {
        Self {
            index,
            activity: Array2::from_elem((FRAMES_PER_CHUNK, LOCAL_SPEAKERS), f32::NAN),
            embeddings: Array2::from_elem((LOCAL_SPEAKERS, dimension), f32::NAN),
        }
    }

    pub fn is_skipped(&self) -> bool {
        self.activity.first().is_some_and(|v| v.is_nan())
    }
}

/// Embedding workers finish out of order; chunks wait here until every
/// earlier one is in, then leave in index order.
#[derive(Debug, Default)]
pub struct Analyses {
    waiting: BTreeMap<usize, ChunkAnalysis>,
    next: usize,
}

impl Analyses {
    pub fn push(&mut self, analysis: ChunkAnalysis) {
        self.waiting.insert(analysis.index, analysis);
    }

    /// The chunks that are next in order, removed from the buffer.
    pub fn take_ready(&mut self) -> Vec<ChunkAnalysis> {
        let mut out = Vec::new();
        while let Some(a) = self.waiting.remove(&self.next) {
            out.push(a);
            self.next += 1;
        }
        out
    }
}

/// `[chunks, 589, 3]` binarized segmentation, the layout pyannote uses.
pub fn binarized<'a>(chunks: impl ExactSizeIterator<Item = &'a ChunkAnalysis>) -> Array3<f32> {
    let mut out = Array3::<f32>::zeros((chunks.len(), FRAMES_PER_CHUNK, LOCAL_SPEAKERS));
    for (mut dst, c) in out.axis_iter_mut(Axis(0)).zip(chunks) {
        dst.assign(&c.activity);
    }
    out
}

/// `[chunks, 3, D]` embeddings, NaN where a local speaker has none.
pub fn embeddings<'a>(
    chunks: impl ExactSizeIterator<Item = &'a ChunkAnalysis>,
    dimension: usize,
) -> Array3<f32> {
    let mut out = Array3::<f32>::from_elem((chunks.len(), LOCAL_SPEAKERS, dimension), f32::NAN);
    for (mut dst, c) in out.axis_iter_mut(Axis(0)).zip(chunks) {
        if c.embeddings.ncols() == dimension {
            dst.assign(&c.embeddings);
        }
    }
    out
}
