//! Scoring speaker identification ("known voices"): which files enrol
//! whom, and how much reference speech carried the right name, a wrong
//! one, or none. Exact on the union of segment boundaries, like `der`.
//! Used by `evaluate --identify`; not part of the plugin.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::AddAssign;

use crate::der::{timeline, Segment};

/// Which files enrol which speakers, and which files are scored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// (file index, speakers enrolled from it), in file order.
    pub enrollment: Vec<(usize, Vec<String>)>,
    /// Indices of the files scored: those that enrol nobody.
    pub scored: Vec<usize>,
}

/// The enrollment protocol. `speakers[i]` are the reference speakers of
/// file i (in index order). A speaker recurs if they appear in two files
/// or more. Going through the files in order, a file that holds a
/// recurring speaker not yet enrolled who also appears in a later file is
/// an enrollment file: every such speaker is enrolled from it. All other
/// files are scored, so no file both enrols and is scored.
pub fn plan(speakers: &[BTreeSet<String>]) -> Plan {
    let mut files_of: HashMap<&str, usize> = HashMap::new();
    for s in speakers.iter().flatten() {
        *files_of.entry(s.as_str()).or_default() += 1;
    }
    let mut enrolled: HashSet<&str> = HashSet::new();
    let mut out = Plan::default();
    for (i, here) in speakers.iter().enumerate() {
        let new: Vec<String> = here
            .iter()
            .filter(|s| files_of[s.as_str()] >= 2 && !enrolled.contains(s.as_str()))
            .filter(|s| speakers[i + 1..].iter().any(|later| later.contains(*s)))
            .cloned()
            .collect();
        if new.is_empty() {
            out.scored.push(i);
        } else {
            enrolled.extend(here.iter().filter(|s| new.contains(s)).map(|s| s.as_str()));
            out.enrollment.push((i, new));
        }
    }
    out
}

/// Reference speech in seconds (a speaker's overlap with itself counted
/// as often as `der` counts it), by what the hypothesis named it.
///
/// A name is *stray* at a moment when the hypothesis has it active but the
/// reference speaker of that name is not speaking then.
/// - Enrolled speakers' speech is `identified` when their own name is
///   active, else `wrong_name` when some stray name is active, else
///   unnamed (the rest of `enrolled_speech`).
/// - Other speakers' speech is `false_accept` when some stray name is
///   active (a name that belongs to a speaker talking at the same time is
///   no false accept).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NamingComponents {
    pub enrolled_speech: f64,
    pub identified: f64,
    pub wrong_name: f64,
    pub other_speech: f64,
    pub false_accept: f64,
}

impl NamingComponents {
    pub fn accuracy(&self) -> f64 {
        ratio(self.identified, self.enrolled_speech)
    }
    pub fn wrong_name_rate(&self) -> f64 {
        ratio(self.wrong_name, self.enrolled_speech)
    }
    pub fn false_accept_rate(&self) -> f64 {
        ratio(self.false_accept, self.other_speech)
    }
}

/// NaN when there is nothing to divide by (printed as "–").
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

impl AddAssign for NamingComponents {
    fn add_assign(&mut self, o: Self) {
        self.enrolled_speech += o.enrolled_speech;
        self.identified += o.identified;
        self.wrong_name += o.wrong_name;
        self.other_speech += o.other_speech;
        self.false_accept += o.false_accept;
    }
}

/// Scores the names in `hypothesis` (labels in `names` are names of
/// enrolled speakers; any other label is an unnamed speaker) against
/// `reference`, whose labels are the speakers' names.
pub fn naming(
    reference: &[Segment],
    hypothesis: &[Segment],
    names: &HashSet<String>,
) -> NamingComponents {
    let mut out = NamingComponents::default();
    for c in naming_by_speaker(reference, hypothesis, names).into_values() {
        out += c;
    }
    out
}

/// `naming`, per reference speaker (their own speech only).
pub fn naming_by_speaker(
    reference: &[Segment],
    hypothesis: &[Segment],
    names: &HashSet<String>,
) -> BTreeMap<String, NamingComponents> {
    let t = timeline(reference, hypothesis);
    let hyp_is_name: Vec<bool> = t
        .hypothesis_labels
        .iter()
        .map(|l| names.contains(l))
        .collect();
    let mut out: Vec<NamingComponents> = vec![Default::default(); t.reference_labels.len()];
    for (d, rc, hc) in &t.intervals {
        let speaking = |label: &str| {
            t.reference_labels
                .iter()
                .zip(rc)
                .any(|(r, &c)| c > 0 && r == label)
        };
        let named: Vec<&str> = t
            .hypothesis_labels
            .iter()
            .zip(hc)
            .zip(&hyp_is_name)
            .filter(|((_, &c), &is_name)| c > 0 && is_name)
            .map(|((l, _), _)| l.as_str())
            .collect();
        let stray = named.iter().any(|n| !speaking(n));
        for (i, &c) in rc.iter().enumerate().filter(|(_, &c)| c > 0) {
            let (speech, label, o) = (d * c as f64, t.reference_labels[i].as_str(), &mut out[i]);
            if names.contains(label) {
                o.enrolled_speech += speech;
                if named.contains(&label) {
                    o.identified += speech;
                } else if stray {
                    o.wrong_name += speech;
                }
            } else {
                o.other_speech += speech;
                if stray {
                    o.false_accept += speech;
                }
            }
        }
    }
    t.reference_labels.into_iter().zip(out).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der::{score, score_named, DerComponents};

    fn seg(label: &str, start: f64, end: f64) -> Segment {
        Segment {
            label: label.into(),
            start,
            end,
        }
    }

    fn set(labels: &[&str]) -> HashSet<String> {
        labels.iter().map(|s| s.to_string()).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn der_is(d: DerComponents, missed: f64, fa: f64, conf: f64, total: f64) {
        assert!(
            close(d.missed, missed)
                && close(d.false_alarm, fa)
                && close(d.confusion, conf)
                && close(d.total, total),
            "{d:?}, want missed {missed} fa {fa} conf {conf} total {total}"
        );
    }

    fn speakers(files: &[&[&str]]) -> Vec<BTreeSet<String>> {
        files
            .iter()
            .map(|f| f.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn the_plan_of_the_real_set() {
        // real/: trn00 … trn09, sample, falcon_test, an4_diarize_test.
        let files = speakers(&[
            &["MEE067", "MEE068", "MÉO069"],
            &["FEO065", "FEO066", "MEE068", "MÉO069"],
            &["FEO066"],
            &["MEE067", "MÉO069"],
            &["MEE075", "MEE076", "MEO074"],
            &["FEE078", "FEE080", "FEE081", "FEO079"],
            &["FEE083", "FEE085", "MEO082"],
            &["FEE087", "FEE088", "MEE089", "MEO086"],
            &["FEE087", "FEE088", "MEE089", "MEO086"],
            &["FEE083", "MEE094", "MEE095"],
            &["speaker90", "speaker91"],
            &["spk1", "spk2", "spk3"],
            &["A", "B"],
        ]);
        let p = plan(&files);
        let enrolled: Vec<(usize, Vec<&str>)> = p
            .enrollment
            .iter()
            .map(|(i, s)| (*i, s.iter().map(|x| x.as_str()).collect()))
            .collect();
        assert_eq!(
            enrolled,
            vec![
                (0, vec!["MEE067", "MEE068", "MÉO069"]),
                (1, vec!["FEO066"]),
                (6, vec!["FEE083"]),
                (7, vec!["FEE087", "FEE088", "MEE089", "MEO086"]),
            ]
        );
        assert_eq!(p.scored, vec![2, 3, 4, 5, 8, 9, 10, 11, 12]);
    }

    #[test]
    fn a_file_whose_recurring_speakers_are_all_enrolled_is_scored() {
        // b recurs, but was enrolled from file 0; c never recurs.
        let p = plan(&speakers(&[&["a", "b"], &["b", "c"], &["a"]]));
        assert_eq!(
            p.enrollment,
            vec![(0, vec!["a".to_string(), "b".to_string()])]
        );
        assert_eq!(p.scored, vec![1, 2]);
    }

    #[test]
    fn names_are_fixed_and_the_rest_mapped_optimally() {
        let r = [
            seg("ann", 0.0, 10.0),
            seg("bob", 10.0, 20.0),
            seg("cy", 20.0, 30.0),
        ];
        // The right names, unnamed labels for the rest: perfect.
        let h = [
            seg("ann", 0.0, 10.0),
            seg("SPEAKER_01", 10.0, 20.0),
            seg("SPEAKER_02", 20.0, 30.0),
        ];
        der_is(
            score_named(&r, &h, &set(&["ann", "bob"])),
            0.0,
            0.0,
            0.0,
            30.0,
        );
        // Ann's speech named bob: under the optimal mapping that is only
        // a label swap (DER 0); with names it is confusion, and bob's own
        // speech (unnamed) cannot map to bob, who is taken by the name.
        let h = [
            seg("bob", 0.0, 10.0),
            seg("SPEAKER_01", 10.0, 20.0),
            seg("SPEAKER_02", 20.0, 30.0),
        ];
        der_is(score(&r, &h), 0.0, 0.0, 0.0, 30.0);
        der_is(
            score_named(&r, &h, &set(&["ann", "bob"])),
            0.0,
            0.0,
            20.0,
            30.0,
        );
        // A name of someone who does not speak here maps to no one.
        let h = [seg("dee", 0.0, 10.0), seg("SPEAKER_01", 10.0, 30.0)];
        der_is(score_named(&r, &h, &set(&["dee"])), 0.0, 0.0, 20.0, 30.0);
        // No names: the optimal-mapping DER.
        let h = [seg("x", 0.0, 15.0), seg("y", 15.0, 31.0)];
        assert_eq!(score_named(&r, &h, &set(&[])), score(&r, &h));
    }

    #[test]
    fn named_der_scores_overlap_and_missed_speech() {
        let r = [seg("ann", 0.0, 10.0), seg("bob", 5.0, 15.0)];
        // Ann named right but only to 8 s; bob unnamed; a false alarm.
        let h = [
            seg("ann", 0.0, 8.0),
            seg("S1", 5.0, 15.0),
            seg("S2", 15.0, 17.0),
        ];
        der_is(
            score_named(&r, &h, &set(&["ann", "bob"])),
            2.0,
            2.0,
            0.0,
            20.0,
        );
    }

    #[test]
    fn identified_wrong_and_false_accepts() {
        let names = set(&["ann", "bob"]);
        let r = [
            seg("ann", 0.0, 10.0),
            seg("bob", 10.0, 20.0),
            seg("guest", 20.0, 30.0),
            // Overlap: guest with ann, while the hypothesis says ann.
            seg("ann", 30.0, 34.0),
            seg("guest", 30.0, 34.0),
        ];
        let h = [
            seg("ann", 0.0, 6.0),         // ann right for 6 s
            seg("SPEAKER_03", 6.0, 10.0), // 4 s unnamed
            seg("ann", 10.0, 13.0),       // bob called ann for 3 s
            seg("bob", 13.0, 20.0),       // bob right for 7 s
            seg("bob", 20.0, 25.0),       // guest called bob for 5 s
            seg("SPEAKER_04", 25.0, 30.0),
            seg("ann", 30.0, 34.0), // ann talks: not a false accept
        ];
        let n = naming(&r, &h, &names);
        assert!(close(n.enrolled_speech, 24.0), "{n:?}");
        assert!(close(n.identified, 17.0), "{n:?}");
        assert!(close(n.wrong_name, 3.0), "{n:?}");
        assert!(close(n.other_speech, 14.0), "{n:?}");
        assert!(close(n.false_accept, 5.0), "{n:?}");
        assert!(close(n.accuracy(), 17.0 / 24.0));
        assert!(close(n.false_accept_rate(), 5.0 / 14.0));
        let by = naming_by_speaker(&r, &h, &names);
        assert!(close(by["ann"].identified, 10.0) && close(by["ann"].enrolled_speech, 14.0));
        assert!(close(by["bob"].wrong_name, 3.0) && close(by["bob"].identified, 7.0));
        assert!(close(by["guest"].false_accept, 5.0) && close(by["guest"].other_speech, 14.0));
    }

    #[test]
    fn right_name_beside_a_stray_one_counts_as_identified() {
        let names = set(&["ann", "bob"]);
        let r = [seg("ann", 0.0, 10.0)];
        let h = [seg("ann", 0.0, 10.0), seg("bob", 0.0, 4.0)];
        let n = naming(&r, &h, &names);
        assert!(
            close(n.identified, 10.0) && close(n.wrong_name, 0.0),
            "{n:?}"
        );
        assert!(naming(&[], &h, &names).accuracy().is_nan());
    }
}
