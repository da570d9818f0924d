//! The whole engine on real audio: pyannote's own sample, diarized by our
//! streaming path, against pyannote.audio 4.0.1's output with the same
//! models and clustering (AHC, since pyannote-ref had no PLDA for CAM++).

mod common;

use common::der::{score, Segment};
use common::wav::read_wav_16k;
use common::{reference, shared};
use gstspeakrs::engine::clustering::ClusteringConfig;
use gstspeakrs::engine::loaded::{EngineConfig, LoadedModels};
use gstspeakrs::engine::output::rttm::parse_rttm;
use gstspeakrs::engine::stream::{diarize, StreamConfig, StreamingDiarizer};

fn pipeline(clustering: ClusteringConfig) -> LoadedModels {
    common::model_set();
    LoadedModels::load(&EngineConfig {
        threads: 2,
        clustering,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn segments(text: &str) -> Vec<Segment> {
    parse_rttm(text)
        .unwrap()
        .iter()
        .map(Segment::from)
        .collect()
}

fn sample() -> Vec<f32> {
    read_wav_16k(&shared().join("eval/real/wav/sample.wav")).unwrap()
}

#[test]
fn ahc_mode_reproduces_pyannote_rttm_on_sample() {
    // pyannote embeds all of a speaker's frames; the 3 s cap is ours.
    let all_frames = StreamConfig {
        max_embedding_frames: Some(usize::MAX),
        ..Default::default()
    };
    let d = diarize(pipeline(ClusteringConfig::ahc()), &all_frames, &sample()).unwrap();
    let theirs = std::fs::read_to_string(reference("pyannote/sample/sample.rttm")).unwrap();
    let c = score(&segments(&theirs), &segments(&d.to_rttm("sample")));
    println!(
        "AHC vs pyannote RTTM: DER {:.3} % ({} speakers)",
        100.0 * c.der(),
        d.num_speakers
    );
    // Same models, same algorithm: the README claims an exact reproduction.
    assert_eq!(
        c.der(),
        0.0,
        "DER vs pyannote {:.3} % (missed {:.3} s, false alarm {:.3} s, confusion {:.3} s)",
        100.0 * c.der(),
        c.missed,
        c.false_alarm,
        c.confusion
    );
    assert_eq!(d.num_speakers, 2);
}

#[test]
fn streaming_in_odd_pieces_equals_offline() {
    let audio = sample();
    let offline = diarize(
        pipeline(ClusteringConfig::vbx()),
        &StreamConfig::default(),
        &audio,
    )
    .unwrap();
    let mut stream =
        StreamingDiarizer::new(pipeline(ClusteringConfig::vbx()), &StreamConfig::default())
            .unwrap();
    for piece in audio.chunks(12_345) {
        stream.push(piece).unwrap();
    }
    // Without a cluster interval nothing is reported before the end.
    assert!(stream.poll().unwrap().is_none());
    let streamed = stream.finish().unwrap();
    assert_eq!(streamed.to_rttm("s"), offline.to_rttm("s"));
}

#[test]
fn every_inference_thread_segments_as_well_as_embeds() {
    // With one segmentation thread, segmentation alone set the wall time of
    // short files once embeddings were capped: the 30 s sample's 21 chunks
    // arrive at once, and the idle worker must take a batch of them.
    let models = pipeline(ClusteringConfig::vbx());
    let before: Vec<u64> = models.segmenters.iter().map(|s| s.batches()).collect();
    diarize(models.clone(), &StreamConfig::default(), &sample()).unwrap();
    assert_eq!(models.segmenters.len(), 2);
    for (i, segmenter) in models.segmenters.iter().enumerate() {
        assert!(
            segmenter.batches() > before[i],
            "worker {i}'s segmentation session never ran"
        );
    }
}

#[test]
fn short_audio_is_one_padded_chunk_and_still_diarized() {
    let audio = sample();
    // The sample's first speech starts at 6.7 s: take 4 s from there.
    let d = diarize(
        pipeline(ClusteringConfig::vbx()),
        &StreamConfig::default(),
        &audio[16_000 * 6..16_000 * 10],
    )
    .unwrap();
    assert!(!d.turns.is_empty(), "4 s of speech must give turns");
    assert!(d.turns.iter().all(|t| t.end <= 4.0 + 1e-9));
}

#[test]
fn silence_and_garbage_give_no_turns_and_no_error() {
    let p = pipeline(ClusteringConfig::vbx());
    let silence = diarize(p.clone(), &StreamConfig::default(), &vec![0.0; 16_000 * 12]).unwrap();
    assert!(silence.turns.is_empty());
    let mut garbage = vec![f32::NAN; 16_000 * 3];
    garbage.extend(std::iter::repeat_n(f32::INFINITY, 16_000));
    assert!(diarize(p.clone(), &StreamConfig::default(), &garbage).is_ok());
    assert!(diarize(p, &StreamConfig::default(), &[])
        .unwrap()
        .turns
        .is_empty());
}
