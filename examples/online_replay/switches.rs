//! Label switches, counted the ways the README reports them: at every
//! re-clustering (the live benchmark's counter, and relabels of the same
//! speech), and from one loop to the next.

use std::collections::{BTreeMap, HashMap};

use crate::der::Segment;

use super::sets::{dominant, relabelled, span, within};

/// Switches at each re-clustering after the first minute.
#[derive(Default)]
pub struct Counter {
    /// Each reference speaker's most-used label within the last report.
    leading: HashMap<String, String>,
    /// Switches of a speaker's most-used label within the reported turns.
    pub switches: usize,
    /// Speakers whose label on the same speech changed.
    pub relabels: usize,
    last: Vec<Segment>,
}

impl Counter {
    /// Counts one re-clustering's report; `trace` prints what it counts.
    pub fn observe(&mut self, truth: &[Segment], reported: Vec<Segment>, until: f64, trace: bool) {
        if let Some((from, to)) = span(&reported) {
            let truth = within(truth, from, to);
            for (speaker, label) in dominant(&truth, &reported, 5.0) {
                let before = self.leading.insert(speaker.clone(), label.clone());
                if until > 60.0 && before.as_ref().is_some_and(|b| *b != label) {
                    self.switches += 1;
                    if trace {
                        eprintln!(
                            "wswitch {until:.0} {speaker}: {before:?} -> {label} now [{}] before [{}]",
                            label_spread(&truth, &speaker, &reported),
                            label_spread(&truth, &speaker, &self.last)
                        );
                    }
                }
            }
        }
        if until > 60.0 {
            let moved = relabelled(truth, &self.last, &reported, 5.0);
            if trace {
                for speaker in &moved {
                    self.trace_relabel(truth, speaker, &reported, until);
                }
            }
            self.relabels += moved.len();
        }
        self.last = reported;
    }

    /// The speaker's reference turns in the report, with the labels on
    /// each before and after.
    fn trace_relabel(&self, truth: &[Segment], speaker: &str, reported: &[Segment], until: f64) {
        eprintln!(
            "relabel {until:.0} {speaker}: now [{}] before [{}]",
            label_spread(truth, speaker, reported),
            label_spread(truth, speaker, &self.last)
        );
        let from = span(reported).map_or(0.0, |(from, _)| from);
        for r in truth
            .iter()
            .filter(|r| r.label == speaker && r.end > from && r.start < until)
        {
            let on = |h: &[Segment]| {
                h.iter()
                    .filter(|x| x.end > r.start && x.start < r.end)
                    .map(|x| format!("{}[{:.1}-{:.1}]", x.label, x.start, x.end))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            eprintln!(
                "   {:.1}-{:.1}: before {} | now {}",
                r.start,
                r.end,
                on(&self.last),
                on(reported)
            );
        }
    }
}

/// Seconds of `speaker`'s reference speech under each label of `hyp`.
fn label_spread(truth: &[Segment], speaker: &str, hyp: &[Segment]) -> String {
    let mut by: BTreeMap<&str, f64> = BTreeMap::new();
    for r in truth.iter().filter(|r| r.label == speaker) {
        for x in hyp {
            let o = r.end.min(x.end) - r.start.max(x.start);
            if o > 0.0 {
                *by.entry(&x.label).or_default() += o;
            }
        }
    }
    by.into_iter()
        .map(|(l, t)| format!("{l}:{t:.0}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reference speakers whose main label in `hyp` differs from the loop
/// before, and the speaker-loops judged.
pub fn from_loop_to_loop(
    truth: &[Segment],
    hyp: &[Segment],
    loop_len: f64,
    loops: usize,
    trace: bool,
) -> (usize, usize) {
    let per_loop: Vec<HashMap<String, String>> = (0..loops)
        .map(|k| {
            let (from, until) = (k as f64 * loop_len, (k + 1) as f64 * loop_len);
            dominant(&within(truth, from, until), &within(hyp, from, until), 0.0)
        })
        .collect();
    let mut switches = 0;
    for pair in per_loop.windows(2) {
        for (speaker, label) in &pair[1] {
            if let Some(old) = pair[0].get(speaker).filter(|l| *l != label) {
                switches += 1;
                if trace {
                    let owners: Vec<&String> = pair[0]
                        .iter()
                        .filter(|(_, l)| *l == label)
                        .map(|(s, _)| s)
                        .collect();
                    eprintln!(
                        "switch {speaker}: {old} -> {label} (last loop {label} was {owners:?})"
                    );
                }
            }
        }
    }
    let judged = per_loop.iter().skip(1).map(|m| m.len()).sum();
    (switches, judged)
}
