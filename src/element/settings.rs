//! Element properties: their specs, the values set, and how they map onto the
//! engine's configuration. Kept out of imp.rs so the glue stays readable.

use std::path::PathBuf;
use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;

use crate::engine::clustering::ClusteringConfig;
use crate::engine::config::max_embedding_fbank_frames;
use crate::engine::loaded::EngineConfig;
use crate::engine::online::OnlineConfig;
use crate::engine::registry::DEFAULT_NAMING_THRESHOLD;
use crate::engine::stream::StreamConfig;
use crate::models::provider::ProviderOptions;
use crate::models::{self, ModelSetRequest};

/// ONNX Runtime execution provider (the `mode` property).
#[derive(Debug, Default, Eq, PartialEq, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSpeakrsMode")]
pub enum Mode {
    #[default]
    #[enum_value(name = "CPU: ONNX Runtime's default provider", nick = "cpu")]
    Cpu = 0,
    #[enum_value(name = "CUDA: NVIDIA GPUs (cargo feature `cuda`)", nick = "cuda")]
    Cuda = 1,
    #[enum_value(
        name = "CoreML: Apple Neural Engine / GPU (macOS, cargo feature `coreml`)",
        nick = "coreml"
    )]
    CoreMl = 2,
    #[enum_value(
        name = "MIGraphX: AMD GPUs via ROCm (cargo feature `migraphx`)",
        nick = "migraphx"
    )]
    MiGraphX = 3,
}

impl From<Mode> for models::Mode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Cpu => models::Mode::Cpu,
            Mode::Cuda => models::Mode::Cuda,
            Mode::CoreMl => models::Mode::CoreMl,
            Mode::MiGraphX => models::Mode::MiGraphX,
        }
    }
}

/// Which CAM++ file of the model set embeds (the `precision` property).
#[derive(Debug, Default, Eq, PartialEq, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSpeakrsPrecision")]
pub enum Precision {
    #[default]
    #[enum_value(name = "fp32: the speaker-embedding model as trained", nick = "fp32")]
    Fp32 = 0,
    #[enum_value(
        name = "int8: most of its convolutions in int8, faster on CPU, DER within about half a point of fp32",
        nick = "int8"
    )]
    Int8 = 1,
}

impl From<Precision> for models::Precision {
    fn from(precision: Precision) -> Self {
        match precision {
            Precision::Fp32 => models::Precision::Fp32,
            Precision::Int8 => models::Precision::Int8,
        }
    }
}

pub const DEFAULT_STEP: f64 = crate::engine::config::DEFAULT_STEP_SECONDS;
pub const DEFAULT_CLUSTER_INTERVAL: gst::ClockTime = gst::ClockTime::from_seconds(30);
pub const DEFAULT_HORIZON: gst::ClockTime = gst::ClockTime::from_seconds(600);

#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub device_id: u32,
    pub model_dir: Option<String>,
    pub segmentation_model: Option<String>,
    pub embedding_model: Option<String>,
    pub plda: Option<String>,
    pub precision: Precision,
    pub step: f64,
    pub cluster_interval: gst::ClockTime,
    pub horizon: gst::ClockTime,
    pub latency: gst::ClockTime,
    pub num_speakers: u32,
    pub min_speakers: u32,
    pub max_speakers: u32,
    pub rttm_location: Option<String>,
    pub threads: u32,
    pub cache_dir: Option<String>,
    pub voices_location: Option<String>,
    pub voices_save: bool,
    pub voices_threshold: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mode: Mode::Cpu,
            device_id: 0,
            model_dir: None,
            segmentation_model: None,
            embedding_model: None,
            plda: None,
            precision: Precision::Fp32,
            step: DEFAULT_STEP,
            cluster_interval: DEFAULT_CLUSTER_INTERVAL,
            horizon: DEFAULT_HORIZON,
            latency: gst::ClockTime::ZERO,
            num_speakers: 0,
            min_speakers: 0,
            max_speakers: 0,
            rttm_location: None,
            threads: 0,
            cache_dir: None,
            voices_location: None,
            voices_save: false,
            voices_threshold: DEFAULT_NAMING_THRESHOLD,
        }
    }
}

fn path(s: &Option<String>) -> Option<PathBuf> {
    s.as_deref().filter(|s| !s.is_empty()).map(PathBuf::from)
}

fn count(n: u32) -> Option<usize> {
    (n > 0).then_some(n as usize)
}

impl Settings {
    pub fn pipeline_config(&self) -> EngineConfig {
        EngineConfig {
            models: ModelSetRequest {
                dir: path(&self.model_dir),
                segmentation: path(&self.segmentation_model),
                embedding: path(&self.embedding_model),
                plda: path(&self.plda),
                precision: self.precision.into(),
            },
            provider: ProviderOptions {
                mode: self.mode.into(),
                device_id: self.device_id,
                cache_dir: path(&self.cache_dir),
            },
            threads: self.threads as usize,
            clustering: ClusteringConfig {
                num_speakers: count(self.num_speakers),
                min_speakers: count(self.min_speakers),
                max_speakers: count(self.max_speakers),
                ..Default::default()
            },
        }
    }

    pub fn stream_config(&self) -> StreamConfig {
        // Held buffers show who speaks in them as the audio plays: their
        // labels are watched (live sources: `analysis::epoch_config`).
        let held = self.latency > gst::ClockTime::ZERO;
        // Held buffers can only name their speakers if turns come while streaming.
        let mut interval = self.cluster_interval;
        if interval == gst::ClockTime::ZERO && held {
            interval = DEFAULT_CLUSTER_INTERVAL;
        }
        let seconds = |t: gst::ClockTime| t.nseconds() as f64 / 1e9;
        let config = StreamConfig {
            step_seconds: self.step,
            online: OnlineConfig {
                cluster_interval: seconds(interval),
                horizon: seconds(self.horizon),
                watched: false,
            },
            // A live stream's labels are due `latency` after the audio.
            lag_budget_seconds: if held {
                seconds(self.latency)
            } else {
                StreamConfig::default().lag_budget_seconds
            },
            // The answer at EOS gains from the 3 s cap (docs/performance.md).
            max_embedding_frames: Some(max_embedding_fbank_frames(self.step)),
            ..Default::default()
        };
        if held {
            config.watched_live()
        } else {
            config
        }
    }

    /// Speaker counts no number of speakers satisfies (checked at start,
    /// before any audio): the message names the properties and their values.
    pub fn check_speakers(&self) -> Result<(), String> {
        let (num, min, max) = (self.num_speakers, self.min_speakers, self.max_speakers);
        let fix = "(0 leaves a count unset)";
        if min > 0 && max > 0 && min > max {
            return Err(format!(
                "min-speakers={min} is greater than max-speakers={max}: no number of speakers satisfies both {fix}"
            ));
        }
        if num > 0 && min > 0 && num < min {
            return Err(format!(
                "num-speakers={num} is less than min-speakers={min}: set num-speakers alone or bounds that contain it {fix}"
            ));
        }
        if num > 0 && max > 0 && num > max {
            return Err(format!(
                "num-speakers={num} is greater than max-speakers={max}: set num-speakers alone or bounds that contain it {fix}"
            ));
        }
        Ok(())
    }

    pub fn rttm_path(&self) -> Option<PathBuf> {
        path(&self.rttm_location)
    }

    pub fn voices_path(&self) -> Option<PathBuf> {
        path(&self.voices_location)
    }

    pub fn set(&mut self, name: &str, value: &glib::Value) {
        let string = || {
            value
                .get::<Option<String>>()
                .expect("type checked upstream")
        };
        let uint = || value.get::<u32>().expect("type checked upstream");
        match name {
            "mode" => self.mode = value.get().expect("type checked upstream"),
            "device-id" => self.device_id = uint(),
            "model-dir" => self.model_dir = string(),
            "segmentation-model" => self.segmentation_model = string(),
            "embedding-model" => self.embedding_model = string(),
            "plda" => self.plda = string(),
            "precision" => self.precision = value.get().expect("type checked upstream"),
            "step" => self.step = value.get().expect("type checked upstream"),
            "cluster-interval" => {
                self.cluster_interval = gst::ClockTime::from_nseconds(value.get().expect("u64"))
            }
            "horizon" => self.horizon = gst::ClockTime::from_nseconds(value.get().expect("u64")),
            "latency" => self.latency = gst::ClockTime::from_nseconds(value.get().expect("u64")),
            "num-speakers" => self.num_speakers = uint(),
            "min-speakers" => self.min_speakers = uint(),
            "max-speakers" => self.max_speakers = uint(),
            "rttm-location" => self.rttm_location = string(),
            "threads" => self.threads = uint(),
            "cache-dir" => self.cache_dir = string(),
            "voices-location" => self.voices_location = string(),
            "voices-save" => self.voices_save = value.get().expect("type checked upstream"),
            "voices-threshold" => {
                self.voices_threshold = value.get().expect("type checked upstream")
            }
            other => unreachable!("unknown property {other}"),
        }
    }

    pub fn get(&self, name: &str) -> glib::Value {
        match name {
            "mode" => self.mode.to_value(),
            "device-id" => self.device_id.to_value(),
            "model-dir" => self.model_dir.to_value(),
            "segmentation-model" => self.segmentation_model.to_value(),
            "embedding-model" => self.embedding_model.to_value(),
            "plda" => self.plda.to_value(),
            "precision" => self.precision.to_value(),
            "step" => self.step.to_value(),
            "cluster-interval" => self.cluster_interval.nseconds().to_value(),
            "horizon" => self.horizon.nseconds().to_value(),
            "latency" => self.latency.nseconds().to_value(),
            "num-speakers" => self.num_speakers.to_value(),
            "min-speakers" => self.min_speakers.to_value(),
            "max-speakers" => self.max_speakers.to_value(),
            "rttm-location" => self.rttm_location.to_value(),
            "threads" => self.threads.to_value(),
            "cache-dir" => self.cache_dir.to_value(),
            "voices-location" => self.voices_location.to_value(),
            "voices-save" => self.voices_save.to_value(),
            "voices-threshold" => self.voices_threshold.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

/// A blurb naming a run-time default, built once; held by a static rather
/// than `Box::leak`ed, so LeakSanitizer does not flag it (#6).
static MODEL_DIR_BLURB: LazyLock<String> = LazyLock::new(|| {
    format!(
        "Directory holding the model set; unset or empty means the location the model preparation writes to ({})",
        models::paths::default_model_dir().display()
    )
});

pub fn properties() -> &'static [glib::ParamSpec] {
    static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
        let string = |name: &'static str, nick: &'static str, blurb: &'static str| {
            glib::ParamSpecString::builder(name)
                .nick(nick)
                .blurb(blurb)
                .mutable_ready()
                .build()
        };
        let uint = |name: &'static str, nick: &'static str, blurb: &'static str, max: u32| {
            glib::ParamSpecUInt::builder(name)
                .nick(nick)
                .blurb(blurb)
                .maximum(max)
                .default_value(0)
                .mutable_ready()
                .build()
        };
        let clock_time = |name: &'static str,
                          nick: &'static str,
                          blurb: &'static str,
                          default: gst::ClockTime| {
            glib::ParamSpecUInt64::builder(name)
                .nick(nick)
                .blurb(blurb)
                .maximum(u64::MAX - 1)
                .default_value(default.nseconds())
                .mutable_ready()
                .build()
        };
        let model_dir_blurb = MODEL_DIR_BLURB.as_str();
        vec![
            glib::ParamSpecEnum::builder_with_default("mode", Mode::Cpu)
                .nick("Mode")
                .blurb("ONNX Runtime execution provider; one the build or library lacks is an error, never a CPU fallback")
                .mutable_ready()
                .build(),
            uint("device-id", "Device ID", "GPU index for the cuda and migraphx modes", i32::MAX as u32),
            string("model-dir", "Model directory", model_dir_blurb),
            string("segmentation-model", "Segmentation model", "Overrides the model set's segmentation ONNX file"),
            string("embedding-model", "Embedding model", "Overrides the model set's speaker-embedding ONNX file"),
            string("plda", "PLDA", "Overrides the model set's PLDA (.npz file or directory of plda_*.npy)"),
            glib::ParamSpecEnum::builder_with_default("precision", Precision::Fp32)
                .nick("Precision")
                .blurb("Which of the model set's speaker-embedding files to run: fp32, or int8 (faster on CPU); an embedding-model file is used as given")
                .mutable_ready()
                .build(),
            glib::ParamSpecDouble::builder("step")
                .nick("Step")
                .blurb("Step between 10 s analysis chunks in seconds (1.0 is the reference; larger is faster, coarser)")
                .minimum(0.1)
                .maximum(10.0)
                .default_value(DEFAULT_STEP)
                .mutable_ready()
                .build(),
            clock_time(
                "cluster-interval",
                "Cluster interval",
                "Stream time in ns between re-clusterings of the horizon while streaming (new chunks are labelled at once in between); 0 = cluster only at EOS",
                DEFAULT_CLUSTER_INTERVAL,
            ),
            clock_time(
                "horizon",
                "Horizon",
                "Stream time in ns of recent analysis kept for re-clustering; older turns are final and memory stays bounded; 0 = keep everything",
                DEFAULT_HORIZON,
            ),
            clock_time(
                "latency",
                "Latency",
                "0: pass buffers at once. > 0: hold audio this many ns so each buffer's meta names who speaks in it (added to the LATENCY query when live)",
                gst::ClockTime::ZERO,
            ),
            uint("num-speakers", "Number of speakers", "Exact number of speakers; 0 = estimate", 1000),
            uint("min-speakers", "Minimum speakers", "Lower bound on the number of speakers; 0 = none", 1000),
            uint("max-speakers", "Maximum speakers", "Upper bound on the number of speakers; 0 = none", 1000),
            string("rttm-location", "RTTM location", "Write the final RTTM to this file at EOS (atomically)"),
            uint("threads", "Threads", "Inference threads, each segmenting and embedding with its own sessions; 0 = all cores", 1024),
            string("cache-dir", "Cache directory", "Where the migraphx mode keeps compiled graphs; unset = no cache"),
            string("voices-location", "Voices file", "Voices file (made by the enroll example or by voices-save): speakers whose voice matches an enrolled voice are labelled with its name, and speakers met before keep their labels; unset = no names, every run starts at SPEAKER_00"),
            glib::ParamSpecBoolean::builder("voices-save")
                .nick("Save voices")
                .blurb("Write the speakers met back into voices-location at EOS and on stopping (atomic replace; a missing file is started), so that a restarted pipeline gives them the same labels")
                .default_value(false)
                .mutable_ready()
                .build(),
            glib::ParamSpecDouble::builder("voices-threshold")
                .nick("Naming threshold")
                .blurb("Score (PLDA log-likelihood ratio) a speaker's voice needs against an enrolled voice to take its name; higher names fewer speakers, and fewer wrongly")
                .minimum(-1000.0)
                .maximum(1000.0)
                .default_value(DEFAULT_NAMING_THRESHOLD)
                .mutable_ready()
                .build(),
        ]
    });
    PROPERTIES.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_are_capped_unless_labels_are_watched_live() {
        let file = Settings::default();
        assert_eq!(file.stream_config().embedding_frames(), 300);
        // A coarse step embeds a step's worth, so no second goes unembedded.
        let coarse = Settings {
            step: 4.0,
            ..Settings::default()
        };
        assert_eq!(coarse.stream_config().embedding_frames(), 400);
        let watched = Settings {
            latency: gst::ClockTime::from_seconds(10),
            ..Settings::default()
        };
        assert_eq!(watched.stream_config().embedding_frames(), usize::MAX);
    }

    #[test]
    fn the_precision_property_picks_the_model_sets_embedding_file() {
        let mut settings = Settings::default();
        assert_eq!(
            settings.pipeline_config().models.precision,
            models::Precision::Fp32
        );
        settings.set("precision", &Precision::Int8.to_value());
        assert_eq!(
            settings.get("precision").get::<Precision>(),
            Ok(Precision::Int8)
        );
        assert_eq!(
            settings.pipeline_config().models.precision,
            models::Precision::Int8
        );
    }
}
