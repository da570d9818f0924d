//! Reading 16 kHz WAV files for the benchmarks and tests; not part of the
//! plugin (the element gets its audio from GStreamer and resamples itself).

use std::path::Path;

/// Mono f32 samples in [-1, 1] of a 16 kHz WAV (channels are averaged).
pub fn read_wav_16k(path: &Path) -> Result<Vec<f32>, String> {
    let mut reader =
        hound::WavReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let spec = reader.spec();
    if spec.sample_rate != gstspeakrs::engine::config::SAMPLE_RATE {
        return Err(format!(
            "{}: {} Hz, expected 16000 Hz",
            path.display(),
            spec.sample_rate
        ));
    }
    let channels = spec.channels.max(1) as usize;
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect()
        }
    }
    .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(interleaved
        .chunks(channels)
        .map(|f| f.iter().sum::<f32>() / channels as f32)
        .collect())
}
