//! What to build: base image, engine, model and where the worker binary comes from.

use std::path::PathBuf;

use common::Settings;

/// The base image made on this machine by `docker/base/make-base-image.sh`.
pub const LOCAL_BASE_IMAGE: &str = "transcribe-fleet/base:bookworm";
/// The GPU runtime base: CUDA 12.4 and cuDNN 9, matching `engine/requirements-gpu.txt`.
pub const GPU_BASE_IMAGE: &str = "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04";
/// The Rust toolchain image that compiles the worker for the GPU image (Debian 11's glibc
/// is older than Ubuntu 22.04's, so the binary runs there).
pub const RUST_IMAGE: &str = "rust:1.95-slim-bullseye";
/// Where the host-built binary sits inside the build context.
pub const CONTEXT_BINARY: &str = "bin/transcription-worker";

/// How the image is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Local mode: CPU image from the local base, host-built binary, wheels from the host.
    pub local: bool,
    /// `BASE_IMAGE`.
    pub base_image: String,
    /// `BUILDER_IMAGE`.
    pub builder_image: String,
    /// `ENGINE`: `whisperx` or `faster-whisper`.
    pub engine: String,
    /// `WHISPER_MODEL` baked into the image.
    pub model: String,
    /// A worker binary built on the host, copied instead of compiled.
    pub worker_binary: Option<PathBuf>,
    /// Whether to build the worker on the host first (`cargo build`, dev profile).
    pub build_on_host: bool,
    /// Whether to download the engine's wheels on the host.
    pub host_wheels: bool,
}

/// The choices step-210 takes from its flags.
#[derive(Debug, Clone, Default)]
pub struct Choices {
    /// `--base-image`.
    pub base_image: Option<String>,
    /// `--builder-image`.
    pub builder_image: Option<String>,
    /// `--engine`.
    pub engine: Option<String>,
    /// `--model`.
    pub model: Option<String>,
    /// `--worker-binary`.
    pub worker_binary: Option<PathBuf>,
    /// `--compile`: compile in the builder stage even in local mode.
    pub compile: bool,
}

/// The plan for `settings` and the operator's `choices`.
pub fn plan(settings: &Settings, choices: &Choices) -> Plan {
    let local = settings.is_local();
    let (base, engine, model) = if local {
        let model = if settings.worker.model.starts_with("bundled:") {
            settings.worker.model.clone()
        } else {
            "bundled:tiny.en".to_string()
        };
        (LOCAL_BASE_IMAGE, "faster-whisper".to_string(), model)
    } else {
        (GPU_BASE_IMAGE, settings.worker.engine.as_str().to_string(), settings.worker.model.clone())
    };
    let base_image = choices.base_image.clone().unwrap_or_else(|| base.to_string());
    let build_on_host = local && !choices.compile && choices.worker_binary.is_none();
    let copies_binary = build_on_host || choices.worker_binary.is_some();
    let default_builder = if copies_binary { base_image.clone() } else { RUST_IMAGE.to_string() };
    let engine = choices.engine.clone().unwrap_or(engine);
    Plan {
        local,
        builder_image: choices.builder_image.clone().unwrap_or(default_builder),
        host_wheels: engine == "faster-whisper",
        engine,
        model: choices.model.clone().unwrap_or(model),
        worker_binary: choices.worker_binary.clone(),
        build_on_host,
        base_image,
    }
}

impl Plan {
    /// Whether the builder stage copies a binary rather than compiling one.
    pub fn copies_binary(&self) -> bool {
        self.build_on_host || self.worker_binary.is_some()
    }

    /// The `--build-arg` pairs for the Dockerfile.
    pub fn build_args(&self, version: &str, revision: &str) -> Vec<(String, String)> {
        let mut args = vec![
            ("BASE_IMAGE", self.base_image.as_str()),
            ("BUILDER_IMAGE", self.builder_image.as_str()),
            ("ENGINE", self.engine.as_str()),
            ("WHISPER_MODEL", self.model.as_str()),
            ("VERSION", version),
            ("GIT_REVISION", revision),
        ];
        if self.copies_binary() {
            args.push(("WORKER_BINARY", CONTEXT_BINARY));
        }
        args.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
}
