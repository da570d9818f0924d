//! Hand-computed DER cases (collar 0, overlap scored, optimal mapping).
//! Tolerance: 1e-9 s on every component.

mod common;

use common::der::{score, DerComponents, Segment};

fn seg(label: &str, start: f64, end: f64) -> Segment {
    Segment {
        label: label.to_string(),
        start,
        end,
    }
}

fn close(d: &DerComponents, missed: f64, fa: f64, conf: f64, total: f64) {
    let ok = (d.missed - missed).abs() < 1e-9
        && (d.false_alarm - fa).abs() < 1e-9
        && (d.confusion - conf).abs() < 1e-9
        && (d.total - total).abs() < 1e-9;
    assert!(
        ok,
        "got {d:?}, want missed {missed} fa {fa} conf {conf} total {total}"
    );
}

#[test]
fn perfect_is_zero() {
    let r = [seg("A", 0.0, 10.0), seg("B", 5.0, 15.0)];
    let d = score(&r, &r);
    close(&d, 0.0, 0.0, 0.0, 20.0);
    assert_eq!(d.der(), 0.0);
}

#[test]
fn all_missed_is_100_percent() {
    let r = [seg("A", 0.0, 10.0), seg("B", 5.0, 15.0)];
    let d = score(&r, &[]);
    close(&d, 20.0, 0.0, 0.0, 20.0);
    assert!((d.der() - 1.0).abs() < 1e-12);
}

#[test]
fn swapped_labels_are_free() {
    let r = [seg("A", 0.0, 10.0), seg("B", 10.0, 20.0)];
    let h = [seg("B", 0.0, 10.0), seg("A", 10.0, 20.0)];
    close(&score(&r, &h), 0.0, 0.0, 0.0, 20.0);
}

/// ref A [0,10], B [10,20]; hyp x [0,12], y [12,20]: x→A, y→B, and
/// [10,12) is B labelled x → 2 s confusion, DER 10 %.
#[test]
fn plain_confusion() {
    let r = [seg("A", 0.0, 10.0), seg("B", 10.0, 20.0)];
    let h = [seg("x", 0.0, 12.0), seg("y", 12.0, 20.0)];
    let d = score(&r, &h);
    close(&d, 0.0, 0.0, 2.0, 20.0);
    assert!((d.der() - 0.1).abs() < 1e-12);
}

/// ref A [0,10], B [5,15] (overlap 5–10), total 20 s.
/// hyp x [0,8], y [8,10], x [10,12], y [12,15], z [12,14].
/// Co-occurrence: A·x 8, B·x 5, A·y 2, B·y 5, B·z 2 → mapping x→A, y→B
/// (13 s), z unmapped. By interval:
///   [0,5)  A | x      ok
///   [5,8)  A,B | x    missed 3
///   [8,10) A,B | y    missed 2
///   [10,12) B | x(→A) confusion 2
///   [12,14) B | y,z   false alarm 2
///   [14,15) B | y     ok
/// → missed 5, false alarm 2, confusion 2: DER 9/20 = 45 %.
#[test]
fn overlap_miss_false_alarm_confusion() {
    let r = [seg("A", 0.0, 10.0), seg("B", 5.0, 15.0)];
    let h = [
        seg("x", 0.0, 8.0),
        seg("y", 8.0, 10.0),
        seg("x", 10.0, 12.0),
        seg("y", 12.0, 15.0),
        seg("z", 12.0, 14.0),
    ];
    let d = score(&r, &h);
    close(&d, 5.0, 2.0, 2.0, 20.0);
    assert!((d.der() - 0.45).abs() < 1e-12);
}

/// Boundaries are exact, not frame-sampled: ref [0.1234, 1.5678],
/// hyp [0.2, 1.5] → missed 0.0766 + 0.0678 = 0.1444 of 1.4444 s.
#[test]
fn boundaries_are_exact() {
    let d = score(&[seg("A", 0.1234, 1.5678)], &[seg("h", 0.2, 1.5)]);
    close(&d, 0.1444, 0.0, 0.0, 1.4444);
}

/// One reference speaker split over two hypothesis labels: the larger part
/// maps, the other 4 s are confusion.
#[test]
fn split_speaker() {
    let d = score(
        &[seg("A", 0.0, 10.0)],
        &[seg("x", 0.0, 6.0), seg("y", 6.0, 10.0)],
    );
    close(&d, 0.0, 0.0, 4.0, 10.0);
}

#[test]
fn components_add_across_files() {
    let mut sum = score(
        &[seg("A", 0.0, 10.0), seg("B", 10.0, 20.0)],
        &[seg("x", 0.0, 12.0), seg("y", 12.0, 20.0)],
    );
    sum += score(&[seg("A", 0.0, 10.0)], &[]);
    close(&sum, 10.0, 0.0, 2.0, 30.0);
    assert!((sum.der() - 0.4).abs() < 1e-12);
}

#[test]
fn degenerate_inputs() {
    assert_eq!(score(&[], &[]).der(), 0.0);
    let fa_only = score(&[], &[seg("x", 0.0, 1.0)]);
    close(&fa_only, 0.0, 1.0, 0.0, 0.0);
    assert!(fa_only.der().is_infinite());
    // Empty, reversed and NaN segments are ignored.
    let d = score(
        &[seg("A", 0.0, 1.0), seg("A", 2.0, 2.0), seg("B", 3.0, 1.0)],
        &[seg("x", f64::NAN, 1.0)],
    );
    close(&d, 1.0, 0.0, 0.0, 1.0);
}
