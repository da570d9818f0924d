//! The live engine: turns while streaming, labels that survive
//! re-clustering, restarts and absences longer than the horizon, memory
//! bounded by the horizon.

mod common;

use common::der::{score, Segment};
use common::shared;
use common::wav::read_wav_16k;
use gstspeakrs::engine::config::CHUNK_SECONDS;
use gstspeakrs::engine::frontend::chunks::ChunkAnalysis;
use gstspeakrs::engine::loaded::{EngineConfig, LoadedModels};
use gstspeakrs::engine::online::{Online, OnlineConfig};
use gstspeakrs::engine::output::diarization::{Diarization, Turn};
use gstspeakrs::engine::output::rttm::parse_rttm;
use gstspeakrs::engine::registry::Registry;
use gstspeakrs::engine::stream::{diarize, StreamConfig, StreamingDiarizer};

fn pipeline() -> LoadedModels {
    common::model_set();
    LoadedModels::load(&EngineConfig {
        threads: 2,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn live(interval: f64, horizon: f64) -> StreamConfig {
    StreamConfig {
        online: OnlineConfig {
            cluster_interval: interval,
            horizon,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// sim-dev files played one after another, with their reference turns.
fn back_to_back(uris: impl IntoIterator<Item = impl AsRef<str>>) -> (Vec<f32>, Vec<Segment>) {
    let (mut audio, mut reference) = (Vec::new(), Vec::new());
    for uri in uris {
        let (more, turns) = sim(uri.as_ref());
        let offset = audio.len() as f64 / 16_000.0;
        reference.extend(turns.into_iter().map(|t| Segment {
            start: t.start + offset,
            end: t.end + offset,
            ..t
        }));
        audio.extend(more);
    }
    (audio, reference)
}

fn sim(uri: &str) -> (Vec<f32>, Vec<Segment>) {
    let set = shared().join("eval/sim-dev");
    let audio = read_wav_16k(&set.join(format!("wav/{uri}.wav"))).unwrap();
    let truth = std::fs::read_to_string(set.join(format!("rttm/{uri}.rttm"))).unwrap();
    (
        audio,
        parse_rttm(&truth)
            .unwrap()
            .iter()
            .map(Segment::from)
            .collect(),
    )
}

fn segments(turns: &[Turn]) -> Vec<Segment> {
    parse_rttm(&Diarization::new(turns.to_vec(), 0.0).to_rttm("x"))
        .unwrap()
        .iter()
        .map(Segment::from)
        .collect()
}

/// The longest sim-dev conversation (83 s).
const LONG: &str = "simdev_011";

#[test]
fn live_stream_reports_turns_while_streaming_and_keeps_the_horizon_bounded() {
    let (audio, truth) = sim(LONG);
    let horizon = 60.0;
    let mut stream = StreamingDiarizer::new(pipeline(), &live(10.0, horizon)).unwrap();
    let (mut updates, mut reclusterings, mut most_kept, mut finalized) = (0, 0, 0, Vec::new());
    let mut analysed = 0.0;
    for (i, piece) in audio.chunks(16_000).enumerate() {
        stream.push(piece).unwrap();
        // Like a live source: the next second comes once this one is analysed
        // (chunks end on whole seconds at step 1 s: the last partial second
        // is analysed only by `finish`).
        let pushed = ((i + 1) as f64).min((audio.len() / 16_000) as f64);
        // The timeout guards a hang only; the test never passes by it.
        let hang = std::time::Instant::now() + std::time::Duration::from_secs(600);
        while pushed >= 10.0 && analysed < pushed - 1e-6 {
            if let Some(u) = stream.poll().unwrap() {
                updates += 1;
                reclusterings += usize::from(u.reclustered);
                assert!(
                    u.provisional
                        .iter()
                        .all(|t| t.start >= u.final_until - 1e-9),
                    "provisional turns start after the final part"
                );
                finalized.extend(u.finalized);
                analysed = u.analysed_until;
                continue;
            }
            assert!(
                std::time::Instant::now() < hang,
                "analysis made no progress past {analysed} s of {pushed} s"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        most_kept = most_kept.max(stream.kept_chunks());
    }
    assert!(updates > 60, "{updates} updates: one per analysed second");
    assert!(reclusterings >= 5, "{reclusterings} re-clusterings");
    // Kept: the horizon plus what is analysed between two polls.
    assert!(
        most_kept <= horizon as usize + 12,
        "{most_kept} chunks kept"
    );
    assert!(
        !finalized.is_empty(),
        "turns leaving the horizon become final"
    );
    let result = stream.finish().unwrap();
    let offline = diarize(pipeline(), &StreamConfig::default(), &audio).unwrap();
    let (live_der, offline_der) = (
        score(&truth, &segments(&result.turns)).der(),
        score(&truth, &segments(&offline.turns)).der(),
    );
    println!(
        "{LONG}: horizon {horizon} s: DER {:.2} % vs offline {:.2} %",
        100.0 * live_der,
        100.0 * offline_der
    );
    assert!(
        live_der < offline_der + 0.05,
        "a 60 s horizon costs at most 5 points here"
    );
}

#[test]
fn a_restarted_stream_keeps_the_speakers_labels() {
    let (audio, _) = sim(LONG);
    let p = pipeline();
    let mut first = StreamingDiarizer::new(p.clone(), &live(10.0, 0.0)).unwrap();
    first.push(&audio).unwrap();
    let (before, registry): (Diarization, Registry) = first.finish_with_registry().unwrap();
    // A flushing seek back to the start: a new stream, same registry.
    let mut second = StreamingDiarizer::with_registry(p, &live(10.0, 0.0), registry).unwrap();
    second.push(&audio).unwrap();
    let after = second.finish().unwrap();
    let agreement = score(&segments(&before.turns), &segments(&after.turns));
    // Same audio, same labels: the identity mapping must be the optimal one.
    let same_label = before
        .turns
        .iter()
        .map(|t| {
            after
                .turns
                .iter()
                .filter(|u| u.speaker == t.speaker)
                .map(|u| (t.end.min(u.end) - t.start.max(u.start)).max(0.0))
                .sum::<f64>()
        })
        .sum::<f64>();
    let total: f64 = before.turns.iter().map(|t| t.end - t.start).sum();
    println!(
        "restart: {:.1} % of speech under the same label; DER between runs {:.2} %",
        100.0 * same_label / total,
        100.0 * agreement.der()
    );
    assert!(same_label / total > 0.9, "labels changed after a restart");
}

#[test]
fn speakers_returning_after_the_horizon_get_their_labels_back() {
    // simdev_008's three speakers, then 114 s of eight others, then
    // simdev_008 again: by then its first turns have left the 60 s horizon.
    let (first, truth) = sim("simdev_008");
    let (audio, reference) = back_to_back(["simdev_008", "simdev_004", "simdev_013", "simdev_008"]);
    let returns_at = (audio.len() - first.len()) as f64 / 16_000.0;
    let mut stream = StreamingDiarizer::new(pipeline(), &live(10.0, 60.0)).unwrap();
    stream.push(&audio).unwrap();
    let result = stream.finish().unwrap();
    let hyp = segments(&result.turns);
    // The label covering most of a reference speaker's speech in [from, to).
    let main_label = |speaker: &str, from: f64, to: f64| {
        let mut by: std::collections::BTreeMap<String, f64> = Default::default();
        for r in reference
            .iter()
            .filter(|r| r.label == speaker && r.start >= from && r.end <= to)
        {
            for h in &hyp {
                let o = r.end.min(h.end) - r.start.max(h.start);
                if o > 0.0 {
                    *by.entry(h.label.clone()).or_default() += o;
                }
            }
        }
        by.into_iter().max_by(|a, b| a.1.total_cmp(&b.1))
    };
    let mut speakers: Vec<&str> = truth.iter().map(|t| t.label.as_str()).collect();
    speakers.sort_unstable();
    speakers.dedup();
    for speaker in speakers {
        let (Some((before, _)), Some((after, seconds))) = (
            main_label(speaker, 0.0, first.len() as f64 / 16_000.0),
            main_label(speaker, returns_at, f64::MAX),
        ) else {
            panic!("{speaker} has no label");
        };
        println!("{speaker}: {before} then {after} ({seconds:.1} s)");
        assert_eq!(before, after, "{speaker} came back under another label");
    }
}

/// Issue #19: on one continuous stream, a new speaker's first seconds were
/// labelled live against every speaker met so far. A clean embedding that
/// held the end of one voice and the start of the next started a second
/// label for a voice, and the next re-clustering of the horizon folded a
/// new speaker's few seconds into a present speaker's cluster; live labels
/// at the edge then differed from what the stream's end said of the same
/// speech (here live 27.1 % against EOS 23.2 % before the fix, 22.8 %
/// against 21.7 % with it). And a speaker's first seconds, at the end of
/// earlier chunks, were outvoted by those chunks' guesses until a newer
/// chunk's label was stitched back onto them: 22.1 % against 21.7 %.
/// Eleven sim-dev conversations back to back (481 s, step 2 s, about 70 s
/// in release): past the first two minutes (which re-cluster on every
/// update) new speakers keep arriving.
#[test]
fn new_speakers_on_a_continuous_stream_get_their_final_labels_live() {
    let (audio, reference) = back_to_back((0..=10).map(|n| format!("simdev_{n:03}")));
    let latency = 10.0;
    let config = StreamConfig {
        step_seconds: 2.0,
        ..live(30.0, 600.0)
    };
    let mut stream = StreamingDiarizer::new(pipeline(), &config).unwrap();
    let (mut live_turns, mut emitted) = (Vec::<Turn>::new(), 0.0f64);
    let mut analysed = 0.0;
    for (i, piece) in audio.chunks(16_000).enumerate() {
        stream.push(piece).unwrap();
        let pushed = (i + 1) as f64;
        let hang = std::time::Instant::now() + std::time::Duration::from_secs(600);
        // Chunks end every 2 s: wait for those the pushed audio completes.
        while pushed >= 10.0 && analysed < pushed - 2.0 + 1e-6 {
            if let Some(u) = stream.poll().unwrap() {
                analysed = u.analysed_until;
                // What a buffer held `latency` seconds was released with.
                let release = analysed - latency;
                if release > emitted {
                    live_turns.extend(u.finalized.iter().chain(&u.provisional).filter_map(|t| {
                        let (s, e) = (t.start.max(emitted), t.end.min(release));
                        (e > s).then_some(Turn {
                            start: s,
                            end: e,
                            ..*t
                        })
                    }));
                    emitted = release;
                }
                continue;
            }
            assert!(
                std::time::Instant::now() < hang,
                "analysis made no progress past {analysed} s of {pushed} s"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    let result = stream.finish().unwrap();
    let within = |segments: Vec<Segment>| -> Vec<Segment> {
        segments
            .into_iter()
            .filter(|s| s.start < emitted)
            .map(|s| Segment {
                end: s.end.min(emitted),
                ..s
            })
            .collect()
    };
    let truth = within(reference);
    let live_der = score(&truth, &within(segments(&live_turns))).der();
    let eos_der = score(&truth, &within(segments(&result.turns))).der();
    println!(
        "{emitted:.0} s: live DER {:.2} %, EOS DER {:.2} %",
        100.0 * live_der,
        100.0 * eos_der
    );
    assert!(
        live_der < eos_der + 0.007,
        "live labels more than 0.7 points behind the final ones"
    );
}

/// How many chunks each poll brings depends on how fast the inference
/// threads run (the machine, its load, the thread count); the labels must
/// not. Two sim-dev files back to back (past the eager first two minutes),
/// fed one chunk per call and in groups of 3 and 7, watched and not: the
/// same turns under the same labels.
#[test]
fn labels_do_not_depend_on_how_many_chunks_each_poll_brings() {
    let (audio, _) = back_to_back(["simdev_011", "simdev_003"]);
    let duration = audio.len() as f64 / 16_000.0;
    let p = pipeline();
    let mut stream = StreamingDiarizer::new(p.clone(), &StreamConfig::default()).unwrap();
    stream.push(&audio).unwrap();
    let chunks = stream.finish_analyses().unwrap();
    let until = |c: &ChunkAnalysis| (c.index as f64 + CHUNK_SECONDS).min(duration);
    for watched in [true, false] {
        let run = |group: usize| -> Vec<Turn> {
            let config = OnlineConfig {
                cluster_interval: 30.0,
                horizon: 600.0,
                watched,
            };
            let mut online = Online::new(1.0, config, &p, Registry::default());
            for calls in chunks.chunks(group) {
                let last = until(calls.last().unwrap());
                online.add(calls.to_vec(), last, &p).unwrap();
            }
            online.finish(duration, &p).unwrap()
        };
        let one_by_one = run(1);
        assert!(one_by_one.len() > 10, "too few turns to compare");
        for group in [3, 7] {
            assert_eq!(
                run(group),
                one_by_one,
                "watched={watched}: turns differ with {group} chunks per call"
            );
        }
    }
}
