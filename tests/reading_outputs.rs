//! The C and Python programs of docs/reading-outputs.md, taken from the page
//! itself, run against this build's plugin on a real recording: they print
//! the final turns from the bus, and with `latency` 10 s each buffer's turns
//! from its meta as well, as the page says. A page edit that breaks either
//! program, or an element change that breaks what they read, fails here.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const PAGE: &str = include_str!("../docs/reading-outputs.md");
const LATENCY_10_S: &str = "latency=10000000000";

/// The body of the page's first fenced block in `language`.
fn program(language: &str) -> &'static str {
    let fence = format!("```{language}\n");
    let start = PAGE
        .find(&fence)
        .unwrap_or_else(|| panic!("docs/reading-outputs.md has no {language} program"))
        + fence.len();
    let len = PAGE[start..]
        .find("\n```")
        .expect("the program's fence is closed");
    &PAGE[start..start + len + 1]
}

/// `source` reading `recording` instead of talk.wav, `from` replaced by `to`.
fn adapted(source: &str, recording: &Path, from: &str, to: &str) -> String {
    assert!(
        source.contains("location=talk.wav") && source.contains(from),
        "the page's program no longer reads talk.wav through `{from}`"
    );
    source
        .replace(
            "location=talk.wav",
            &format!("location={}", recording.display()),
        )
        .replace(from, to)
}

fn recording() -> PathBuf {
    let path = common::shared().join("eval/real/wav/trn00.wav");
    assert!(path.is_file(), "{} missing", path.display());
    path
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("speakrs-reading-outputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A folder holding only this checkout's plugin, built now: the tests link
/// the rlib, while C and Python load the cdylib, which `cargo test` does not
/// rebuild.
fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap();
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev",
            Some(name) => name,
            None => panic!("no profile folder above {}", exe.display()),
        };
        let status = Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()))
            .args([
                "build",
                "--lib",
                "--locked",
                "--quiet",
                "--profile",
                profile,
                "--target-dir",
            ])
            .arg(profile_dir.parent().unwrap())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the plugin failed");
        let dir = scratch().join("plugin");
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("libgstspeakrs.so");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(profile_dir.join("libgstspeakrs.so"), &link).unwrap();
        dir
    })
}

fn pkg_config(args: &[&str]) -> String {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("gstreamer-1.0")
        .output()
        .expect("pkg-config (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "pkg-config {args:?} gstreamer-1.0 failed"
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs `command` with this build's plugin and the system's plugins only,
/// in a private registry, for at most two minutes.
fn run(command: &[&str]) -> Output {
    let out = Command::new("timeout")
        .arg("120")
        .args(command)
        .env("GST_REGISTRY_1_0", scratch().join("registry.bin"))
        .env(
            "GST_PLUGIN_SYSTEM_PATH_1_0",
            pkg_config(&["--variable=pluginsdir"]),
        )
        .env("GST_PLUGIN_PATH_1_0", plugin_dir())
        .output()
        .expect("the program starts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("Traceback"),
        "{command:?} failed ({}):\n{}\n{stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

fn c_program(latency: bool) -> Vec<(String, f64, f64)> {
    let dir = scratch();
    let from = "speakrsdiarize name=d";
    let to = if latency {
        format!("{from} {LATENCY_10_S}")
    } else {
        from.to_string()
    };
    let name = if latency { "turns-latency" } else { "turns" };
    let source = dir.join(format!("{name}.c"));
    std::fs::write(&source, adapted(program("c"), &recording(), from, &to)).unwrap();
    let exe = dir.join(name);
    let flags = pkg_config(&["--cflags", "--libs"]);
    let status = Command::new("cc")
        .arg(&source)
        .arg("-o")
        .arg(&exe)
        .args(flags.split_whitespace())
        .status()
        .expect("a C compiler (cc)");
    assert!(status.success(), "the page's C program does not compile");
    let out = run(&[exe.to_str().unwrap()]);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let [speaker, start, end] = fields[..] else {
                panic!("not `speaker start end`: {line:?}")
            };
            let (start, end): (f64, f64) = (start.parse().unwrap(), end.parse().unwrap());
            assert!(
                speaker.starts_with("SPEAKER_") && 0.0 <= start && start < end && end <= 30.1,
                "not a turn of the 30 s recording: {line:?}"
            );
            (speaker.to_string(), start, end)
        })
        .collect()
}

#[test]
fn the_c_program_prints_the_final_turns_from_the_bus() {
    let turns = c_program(false);
    let speakers: std::collections::BTreeSet<_> = turns.iter().map(|t| &t.0).collect();
    // trn00 has three speakers; two or more show the turns were read.
    assert!(speakers.len() >= 2, "turns {turns:?}");
}

#[test]
fn the_c_program_with_latency_prints_the_final_turns_from_the_meta_too() {
    let turns = c_program(true);
    // A turn is in one buffer's meta (the turns new or changed since the
    // buffer before) and once in the bus's final list: the final turns show
    // twice when the meta carries them.
    let mut lines: Vec<String> = turns
        .iter()
        .map(|(s, a, b)| format!("{s} {a} {b}"))
        .collect();
    lines.sort();
    let twice = lines.windows(2).filter(|w| w[0] == w[1]).count();
    assert!(
        twice >= 2,
        "no turn printed from both the meta and the bus: {lines:?}"
    );
}

/// A Python 3 with GStreamer's introspection (python3-gi): the one on PATH,
/// else Debian's, where python3-gi installs.
fn python_with_gi() -> &'static str {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|python| {
            Command::new(python)
                .args(["-c", "import gi; gi.require_version('Gst', '1.0')"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect(
            "no python3 with python3-gi and gir1.2-gstreamer-1.0 (scripts/setup.sh installs them)",
        )
}

fn python_program(latency: bool) -> String {
    let to = if latency {
        format!("speakrsdiarize {LATENCY_10_S} !")
    } else {
        "speakrsdiarize !".to_string()
    };
    let name = if latency {
        "turns-latency.py"
    } else {
        "turns.py"
    };
    let script = scratch().join(name);
    std::fs::write(
        &script,
        adapted(program("python"), &recording(), "speakrsdiarize !", &to),
    )
    .unwrap();
    let out = run(&[python_with_gi(), script.to_str().unwrap()]);
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_python_program_prints_the_final_message() {
    let out = python_program(false);
    let last = out.lines().last().unwrap_or_default();
    let fields: Vec<&str> = last.split(' ').collect();
    let ["final", speakers, "speakers,", turns, "turns"] = fields[..] else {
        panic!("last line is not the final message: {out}")
    };
    assert!(
        speakers.parse::<u32>().unwrap() >= 2 && turns.parse::<u32>().unwrap() >= 2,
        "{out}"
    );
}

#[test]
fn the_python_program_with_latency_prints_the_final_turns_from_the_meta() {
    let out = python_program(true);
    let (mut final_turns, mut listed) = (0, None);
    for line in out.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields[..] {
            [speaker, start, end, "True"]
                if speaker.starts_with("SPEAKER_")
                    && start.parse::<f64>().is_ok()
                    && end.parse::<f64>().is_ok() =>
            {
                final_turns += 1
            }
            ["final", _, "speakers,", turns, "turns"] => listed = turns.parse::<usize>().ok(),
            _ => {}
        }
    }
    // Every turn of the final message reached a buffer's meta as final.
    assert_eq!(Some(final_turns), listed, "{out}");
    assert!(final_turns >= 2, "{out}");
}
