//! `evaluate --identify`: how well enrolled voices name speakers (engine
//! path, whatever `--mode` says). Per set, the reference RTTM labels are the speakers:
//! 1. enrollment (`naming::plan`): a file holding a recurring speaker (in
//!    two files or more) not yet enrolled is an enrollment file, and every
//!    such speaker is enrolled from it (`enroll` with their reference
//!    turns as their own, everyone else's in that file as others'); every
//!    other file is scored, so no file both enrols and is scored;
//! 2. each scored file is diarized once, with a registry that knows the
//!    enrolled voices, and its speakers are named at each threshold of the
//!    sweep from the speaker models the stream ends with (naming never
//!    moves a label, so one diarization serves every threshold);
//! 3. the names are scored (`naming`, `der::score_named`) over all scored
//!    files; the plain optimal-mapping DER (no names) is printed beside.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Instant;

use gstspeakrs::engine::loaded::LoadedModels;
use gstspeakrs::engine::output::diarization::Diarization;
use gstspeakrs::engine::registry::enroll::{enroll, Whose};
use gstspeakrs::engine::registry::{
    HorizonSums, Identities, KnownVoices, Registry, Voice, DEFAULT_NAMING_THRESHOLD,
};
use gstspeakrs::engine::stream::{StreamConfig, StreamingDiarizer};
use gstspeakrs::models::voices::{EnrolledVoice, ModelIdentity, Voices};

use super::der::{score, score_named, DerComponents, Segment};
use super::naming::{naming, naming_by_speaker, plan, NamingComponents};
use super::sets::{read_index, segments};
use super::wav::read_wav_16k;
use super::Options;

/// The sweep when none is given: PLDA log-likelihood ratios of the voices'
/// means around the engine's default; cosine similarities for a model set
/// without PLDA.
const PLDA_SWEEP: &[f64] = &[0.0, 10.0, 20.0, 25.0, 30.0, 35.0, 40.0, 50.0];
const COSINE_SWEEP: &[f64] = &[0.4, 0.5, 0.6, 0.7, 0.8];

/// One threshold's totals over a set's scored files.
#[derive(Default, Clone)]
struct Totals {
    naming: NamingComponents,
    named: DerComponents,
    by_speaker: BTreeMap<String, NamingComponents>,
    /// Names given (one per named diarized speaker and file), and those
    /// given to a speaker whose speech is mostly someone else's.
    names_given: usize,
    names_misplaced: usize,
}

/// The reference speaker that most of diarized speaker `k`'s speech
/// belongs to, with that share.
fn dominant_reference<'a>(
    d: &Diarization,
    reference: &'a [Segment],
    k: usize,
) -> Option<(&'a str, f64)> {
    let mut speech = 0.0;
    let mut by_ref: BTreeMap<&str, f64> = BTreeMap::new();
    for t in d.turns.iter().filter(|t| t.speaker == k) {
        speech += t.end - t.start;
        for r in reference {
            let o = t.end.min(r.end) - t.start.max(r.start);
            if o > 0.0 {
                *by_ref.entry(&r.label).or_default() += o;
            }
        }
    }
    by_ref
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(r, o)| (r, o / speech.max(1e-9)))
}

fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1} %", 100.0 * x)
    } else {
        "–".into()
    }
}

fn pct2(x: f64) -> String {
    if x.is_finite() {
        format!("{:.2} %", 100.0 * x)
    } else {
        "–".into()
    }
}

fn turns(own: bool, name: &str, reference: &[Segment]) -> Vec<(f64, f64)> {
    reference
        .iter()
        .filter(|s| (s.label == name) == own)
        .map(|s| (s.start, s.end))
        .collect()
}

/// `d`'s hypothesis under `identities`, through its RTTM as `evaluate`
/// scores it (times to the millisecond).
fn hypothesis(d: &Diarization, identities: Option<&Identities>, uri: &str) -> Vec<Segment> {
    let mut named = d.clone();
    named.identities = identities.cloned();
    segments(&named.to_rttm(uri))
}

/// One diarized speaker's voice against the enrolled ones.
struct Scores {
    /// (score, name), best first: as the engine scores (each embedding
    /// counted as independent evidence).
    engine: Vec<(f64, String)>,
    /// The same means scored as if each side were one embedding: a
    /// diagnostic of ranking without the evidence weighting.
    unit: Vec<(f64, String)>,
    weight: f64,
}

fn ranked(mut s: Vec<(f64, String)>) -> Vec<(f64, String)> {
    s.sort_by(|a, b| b.0.total_cmp(&a.0));
    s
}

/// "name score (rank r)" of `name` in `s`.
fn place(s: &[(f64, String)], name: &str) -> String {
    s.iter()
        .position(|(_, n)| n == name)
        .map_or("–".into(), |r| format!("{:.1} (rank {})", s[r].0, r + 1))
}

/// Per diarized speaker: its speech, the reference speaker it mostly
/// covers, its best-scoring enrolled voices and, when that reference
/// speaker is enrolled, how their own voice scores.
fn describe_speakers(
    d: &Diarization,
    reference: &[Segment],
    scores: &BTreeMap<usize, Scores>,
    names: &HashSet<String>,
) {
    let mut speakers: Vec<usize> = d.turns.iter().map(|t| t.speaker).collect();
    speakers.sort_unstable();
    speakers.dedup();
    for k in speakers {
        let speech: f64 = d
            .turns
            .iter()
            .filter(|t| t.speaker == k)
            .map(|t| t.end - t.start)
            .sum();
        let dominant = dominant_reference(d, reference, k);
        let mostly = dominant.map_or("nobody".to_string(), |(r, share)| {
            let tag = if names.contains(r) {
                "enrolled"
            } else {
                "not enrolled"
            };
            format!("{r} {:.0} %, {tag}", 100.0 * share)
        });
        let best = scores.get(&k).map_or("no voice model".to_string(), |s| {
            let top: Vec<String> = s
                .engine
                .iter()
                .take(2)
                .map(|(v, n)| format!("{n} {v:.1}"))
                .collect();
            let mut out = format!("weight {:.0}; best voices {}", s.weight, top.join(", "));
            if let Some((r, _)) = dominant.filter(|(r, _)| names.contains(*r)) {
                let other = s.unit.iter().find(|(_, n)| n != r);
                out += &format!(
                    "; own voice {r}: {}; scored at weight 1 each: own {}, best other {}",
                    place(&s.engine, r),
                    place(&s.unit, r),
                    other.map_or("–".into(), |(v, n)| format!("{n} {v:.1}"))
                );
            } else if let Some((v, n)) = s.unit.first() {
                out += &format!("; scored at weight 1 each: best {n} {v:.1}");
            }
            out
        });
        eprintln!(
            "    {} {speech:5.1} s (mostly {mostly}); {best}",
            Diarization::label(k)
        );
    }
}

pub fn run(o: &Options, models: &LoadedModels) {
    let thresholds: Vec<f64> = o.thresholds.clone().unwrap_or_else(|| {
        if models.plda.is_some() {
            PLDA_SWEEP.to_vec()
        } else {
            COSINE_SWEEP.to_vec()
        }
    });
    let stream = StreamConfig {
        step_seconds: o.step,
        ..Default::default()
    };
    let voice = Voice::new(models.plda.clone());
    println!(
        "command: cargo run --release --example evaluate -- {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    println!();
    println!(
        "Identification, engine path, step {} s, clustering {}; voices scored by {} (default naming threshold {DEFAULT_NAMING_THRESHOLD}).",
        o.step,
        o.clustering,
        if models.plda.is_some() { "PLDA log-likelihood ratio" } else { "cosine" },
    );
    println!("Protocol per set: the reference labels are the speakers; a speaker recurs if in ≥ 2 files. In index order, a file holding a recurring speaker not yet enrolled is an enrollment file, and each such speaker is enrolled from it (own reference turns vs. everyone else's there); every other file is scored. Identified = an enrolled speaker's speech while the hypothesis has their name active; wrong name = not identified while a name is active whose speaker is not talking; false accept = a non-enrolled speaker's speech while such a stray name is active. Names on someone else's speaker: names given to a diarized speaker whose speech is mostly another reference speaker's, of all names given (per file). DER named: names fixed to their reference speaker, other labels mapped optimally onto the rest; DER optimal: names ignored. Collar 0, overlap scored.");
    println!();
    let mut rows = Vec::new();
    let mut speaker_rows = Vec::new();
    let mut mismatches = 0;
    for set in &o.sets {
        let set_name = set
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let entries = read_index(set);
        let references: Vec<Vec<Segment>> = entries
            .iter()
            .map(|e| segments(&std::fs::read_to_string(&e.rttm).expect("reference RTTM")))
            .collect();
        let speakers: Vec<BTreeSet<String>> = references
            .iter()
            .map(|r| r.iter().map(|s| s.label.clone()).collect())
            .collect();
        let plan = plan(&speakers);

        let t0 = Instant::now();
        let mut enrolled: Vec<EnrolledVoice> = Vec::new();
        let mut enrolled_from: BTreeMap<String, String> = BTreeMap::new();
        let mut failed: Vec<String> = Vec::new();
        for (i, who) in &plan.enrollment {
            let (e, reference) = (&entries[*i], &references[*i]);
            let samples = read_wav_16k(&e.wav).expect("16 kHz wav");
            for name in who {
                let (own, others) = (turns(true, name, reference), turns(false, name, reference));
                let whose = Whose::Turns {
                    own: &own,
                    others: &others,
                };
                let speech: f64 = own.iter().map(|(a, b)| b - a).sum();
                match enroll(models, name, &samples, &whose) {
                    Ok(v) => {
                        eprintln!(
                            "{set_name}: enrolled {name} from {} ({speech:.1} s of turns, {:.0} embeddings)",
                            e.uri, v.weight
                        );
                        enrolled_from.insert(name.clone(), format!("{} ({:.0})", e.uri, v.weight));
                        enrolled.push(v);
                    }
                    Err(err) => {
                        eprintln!("{set_name}: {name} NOT enrolled from {}: {err}", e.uri);
                        failed.push(format!("{name} ({}, {speech:.1} s of turns)", e.uri));
                    }
                }
            }
        }
        let enroll_seconds = t0.elapsed().as_secs_f64();
        let names: HashSet<String> = enrolled.iter().map(|v| v.name.clone()).collect();
        let voices = Voices {
            models: ModelIdentity::default(),
            enrolled: enrolled.clone(),
            next_label: 0,
            met: Vec::new(),
        };
        let registry = Registry::from_voices(&voices, DEFAULT_NAMING_THRESHOLD);

        let t1 = Instant::now();
        let mut totals = vec![Totals::default(); thresholds.len()];
        let mut optimal = DerComponents::default();
        let mut met: BTreeSet<String> = BTreeSet::new();
        let scored: Vec<&str> = plan
            .scored
            .iter()
            .map(|&i| entries[i].uri.as_str())
            .collect();
        for &i in &plan.scored {
            let (e, reference) = (&entries[i], &references[i]);
            met.extend(speakers[i].iter().filter(|s| names.contains(*s)).cloned());
            let samples = read_wav_16k(&e.wav).expect("16 kHz wav");
            let mut s = StreamingDiarizer::with_registry(models.clone(), &stream, registry.clone())
                .unwrap_or_else(|err| panic!("{}: {err}", e.uri));
            s.push(&samples)
                .unwrap_or_else(|err| panic!("{}: {err}", e.uri));
            let (d, after) = s
                .finish_with_registry()
                .unwrap_or_else(|err| panic!("{}: {err}", e.uri));
            let speaker_models = after.models(&HorizonSums::new());
            // Each speaker's enrolled voices by score, best first.
            let mut scores: BTreeMap<usize, Scores> = BTreeMap::new();
            for m in &speaker_models {
                let with = |n: f64, w: &dyn Fn(&EnrolledVoice) -> f64| {
                    ranked(
                        enrolled
                            .iter()
                            .map(|v| (voice.score(&m.mean, n, &v.mean, w(v)), v.name.clone()))
                            .collect(),
                    )
                };
                let engine = with(m.weight, &|v| v.weight);
                let unit = with(1.0, &|_| 1.0);
                scores.insert(
                    m.id,
                    Scores {
                        engine,
                        unit,
                        weight: m.weight,
                    },
                );
            }
            let identify_with = |threshold: f64| {
                let voices = enrolled.clone();
                KnownVoices { voices, threshold }.identify(&speaker_models, &voice)
            };
            let identify = |threshold: f64| identify_with(threshold);
            // Naming from the returned registry must give what the stream
            // named at its own threshold.
            let again = identify_with(DEFAULT_NAMING_THRESHOLD);
            let stream_names = d.identities.clone().unwrap_or_default();
            let same = again.len() == stream_names.len()
                && again.iter().all(|(k, a)| {
                    stream_names
                        .get(k)
                        .is_some_and(|b| a.name == b.name && (a.score - b.score).abs() < 1e-6)
                });
            if !same {
                mismatches += 1;
                eprintln!(
                    "{}: WARNING: names re-derived at {DEFAULT_NAMING_THRESHOLD} {again:?} differ from the stream's {:?}",
                    e.uri, stream_names
                );
            }
            let plain = score(reference, &hypothesis(&d, None, &e.uri));
            optimal += plain;
            eprintln!(
                "{set_name}/{:<20} DER {:6.2} % (optimal mapping); names at {DEFAULT_NAMING_THRESHOLD}: {}",
                e.uri,
                100.0 * plain.der(),
                stream_names
                    .iter()
                    .map(|(k, id)| format!("{}={} ({:.1})", Diarization::label(*k), id.name, id.score))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            describe_speakers(&d, reference, &scores, &names);
            for (t, &threshold) in totals.iter_mut().zip(&thresholds) {
                let given = identify(threshold);
                t.names_given += given.len();
                t.names_misplaced += given
                    .iter()
                    .filter(|(k, id)| {
                        dominant_reference(&d, reference, **k).map(|(r, _)| r) != Some(&id.name)
                    })
                    .count();
                let hyp = hypothesis(&d, Some(&given), &e.uri);
                t.naming += naming(reference, &hyp, &names);
                t.named += score_named(reference, &hyp, &names);
                for (speaker, c) in naming_by_speaker(reference, &hyp, &names) {
                    if names.contains(&speaker) {
                        *t.by_speaker.entry(speaker).or_default() += c;
                    }
                }
            }
        }
        eprintln!(
            "{set_name}: enrollment {enroll_seconds:.1} s, diarization and scoring {:.1} s",
            t1.elapsed().as_secs_f64()
        );
        println!(
            "{set_name}: enrollment files {}; scored files ({}) {}.",
            plan.enrollment
                .iter()
                .map(|(i, who)| format!("{} ({})", entries[*i].uri, who.join(", ")))
                .collect::<Vec<_>>()
                .join("; "),
            scored.len(),
            scored.join(" ")
        );
        if !failed.is_empty() {
            println!(
                "{set_name}: enrollment failed (no clean speech of theirs; scored as not enrolled): {}.",
                failed.join(", ")
            );
        }
        let first = totals.first().map(|t| t.naming).unwrap_or_default();
        for (t, &threshold) in totals.iter().zip(&thresholds) {
            rows.push(format!(
                "| {set_name} | {threshold} | {} / {} | {} | {} | {} | {} | {} of {} | {} | {} | {} |",
                met.len(),
                names.len(),
                scored.len(),
                pct(t.naming.accuracy()),
                pct(t.naming.wrong_name_rate()),
                pct(t.naming.false_accept_rate()),
                t.names_misplaced,
                t.names_given,
                pct2(t.named.der()),
                pct2(optimal.der()),
                format_args!("{:.1} s / {:.1} s", first.enrolled_speech, first.other_speech),
            ));
        }
        for speaker in &met {
            let cells: Vec<String> = totals
                .iter()
                .map(|t| {
                    let c = t.by_speaker.get(speaker).copied().unwrap_or_default();
                    format!("{} / {}", pct(c.accuracy()), pct(c.wrong_name_rate()))
                })
                .collect();
            let speech = totals
                .first()
                .and_then(|t| t.by_speaker.get(speaker))
                .map_or(0.0, |c| c.enrolled_speech);
            speaker_rows.push(format!(
                "| {set_name} | {speaker} | {} | {speech:.1} s | {} |",
                enrolled_from.get(speaker).map_or("", |s| s.as_str()),
                cells.join(" | ")
            ));
        }
    }
    println!();
    println!("| set | threshold | enrolled speakers (in scored files / enrolled) | scored files | identification accuracy | wrong name | false accept | names on someone else's speaker | DER named | DER optimal | speech: enrolled / other speakers |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    println!();
    println!("Per enrolled speaker: identification accuracy / wrong name, over the scored files, at each threshold.");
    println!();
    let header: Vec<String> = thresholds.iter().map(|t| format!("at {t}")).collect();
    println!(
        "| set | speaker | enrolled from (embeddings) | speech scored | {} |",
        header.join(" | ")
    );
    println!("|---|---|---|---|{}", "---|".repeat(thresholds.len()));
    for r in &speaker_rows {
        println!("{r}");
    }
    if mismatches > 0 {
        println!();
        println!("WARNING: in {mismatches} files the names re-derived from the returned registry at {DEFAULT_NAMING_THRESHOLD} differ from the stream's own (see stderr).");
    }
}
