//! What the workers learn about each chunk, kept for (re-)clustering.

use ndarray::{Array2, Array3, Axis};

use super::config::{FRAMES_PER_CHUNK, LOCAL_SPEAKERS};

/// Segmentation and embeddings of one chunk.
#[derive(Debug, Clone)]
pub struct ChunkAnalysis {
    /// Chunk index: the chunk starts at `index · step`.
    pub index: usize,
    /// Binary activity `[589, 3]` of the local speakers.
    pub activity: Array2<f32>,
    /// One embedding per local speaker; NaN-filled when it has none.
    pub embeddings: Array2<f32>,
}

/// All chunk analyses of a stream, by chunk index. Embedding workers finish
/// out of order; only the gap-free prefix is ready for clustering.
#[derive(Debug, Default)]
pub struct Analyses {
    slots: Vec<Option<ChunkAnalysis>>,
    ready: usize,
    pub dimension: usize,
}

impl Analyses {
    pub fn push(&mut self, analysis: ChunkAnalysis) {
        self.dimension = analysis.embeddings.ncols();
        let index = analysis.index;
        if self.slots.len() <= index {
            self.slots.resize_with(index + 1, || None);
        }
        self.slots[index] = Some(analysis);
        while self.slots.get(self.ready).is_some_and(Option::is_some) {
            self.ready += 1;
        }
    }

    /// Chunks ready for clustering: 0..len() are all analysed.
    pub fn len(&self) -> usize {
        self.ready
    }

    pub fn is_empty(&self) -> bool {
        self.ready == 0
    }

    fn ready_chunks(&self) -> impl Iterator<Item = &ChunkAnalysis> {
        self.slots[..self.ready].iter().flatten()
    }

    /// `[chunks, 589, 3]` binarized segmentation, the layout pyannote uses.
    pub fn binarized(&self) -> Array3<f32> {
        let mut out = Array3::<f32>::zeros((self.ready, FRAMES_PER_CHUNK, LOCAL_SPEAKERS));
        for (mut dst, c) in out.axis_iter_mut(Axis(0)).zip(self.ready_chunks()) {
            dst.assign(&c.activity);
        }
        out
    }

    /// `[chunks, 3, D]` embeddings, NaN where a local speaker has none.
    pub fn embeddings(&self) -> Array3<f32> {
        let mut out = Array3::<f32>::from_elem((self.ready, LOCAL_SPEAKERS, self.dimension), f32::NAN);
        for (mut dst, c) in out.axis_iter_mut(Axis(0)).zip(self.ready_chunks()) {
            if c.embeddings.ncols() == self.dimension {
                dst.assign(&c.embeddings);
            }
        }
        out
    }
}
