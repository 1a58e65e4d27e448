//! Step 110: build the worker, bundle it and upload it as a content-addressed version.
//!
//! Cloud: `cargo build --release -p transcription-worker --target x86_64-unknown-linux-gnu`,
//! then the highest GLIBC symbol version the binary needs is checked against the AMI's glibc
//! (Ubuntu 22.04: 2.35). Local mode builds with the dev profile (a release build of the SDK
//! takes about 25 minutes on these machines). The bundle is the worker, the engine script, the
//! pinned GPU requirements, `install.sh` and the systemd unit; its version is a hash of its
//! contents ([`fleet::bundle`]). Files go to `bundles/<version>/` with a manifest and
//! `SHA256SUMS`, then `bundles/current` points at the version. Uploading the same contents
//! again changes nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use common::aws::SdkResultExt;
use common::{Context, HintExt, Mark, Report, Settings};
use fleet::bundle::{self, BundleFile, Manifest};
use fleet::s3;

/// The step's name.
pub const STEP: &str = "step-110-deploy-worker-code";

/// The build target of the worker on the AMI.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Flags of step 110.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Use this worker binary instead of building one.
    #[arg(long, value_name = "FILE")]
    pub worker_bin: Option<PathBuf>,
}

/// Runs step 110.
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    ctx.ui.header(STEP, "building and uploading the worker bundle");
    let settings = ctx.load_settings()?.settings;
    let mut report = Report::new(STEP);
    let (binary, profile) = match args.worker_bin {
        Some(path) => (path, "prebuilt".to_string()),
        None => build_worker(&ctx, &settings)?,
    };
    let bytes =
        std::fs::read(&binary).with_context(|| format!("failed to read `{}`", binary.display()))?;
    let glibc = check_glibc(&bytes, &settings, &mut report);
    let mut files = vec![(bundle::WORKER_BINARY.to_string(), bytes, true)];
    for (name, source) in fleet::traditional::bundle_sources(&ctx.project.root) {
        let data = std::fs::read(&source)
            .with_context(|| format!("failed to read `{}`", source.display()))?;
        files.push((name.to_string(), data, false));
    }
    let entries: Vec<BundleFile> = files
        .iter()
        .map(|(name, data, executable)| BundleFile {
            name: name.clone(),
            sha256: bundle::sha256_hex(data),
            size: data.len() as u64,
            executable: *executable,
        })
        .collect();
    let manifest = Manifest {
        version: bundle::version_of(&entries),
        files: entries,
        created_at: chrono::Utc::now(),
        profile,
        worker_glibc: glibc,
        git_revision: git_revision(&ctx.project.root),
    };
    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let s3 = common::aws::s3_client(&config, &settings);
    upload(&ctx, &s3, &settings.bucket, &manifest, &files, &mut report).await?;
    report.summary = format!("worker bundle {} is current", manifest.version);
    report.data = serde_json::json!({ "version": manifest.version, "manifest": manifest });
    report.next.push("./scripts/step-111-validate-worker-code.sh".to_string());
    Ok(report)
}

fn build_worker(ctx: &Context, settings: &Settings) -> anyhow::Result<(PathBuf, String)> {
    let root = &ctx.project.root;
    let target_dir =
        ctx.env.get("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let mut command = Command::new(ctx.env.get("CARGO").map_or("cargo", String::as_str));
    command.arg("build").arg("--manifest-path").arg(root.join("Cargo.toml"));
    command.args(["-p", "transcription-worker"]);
    let (binary, profile) = if settings.is_local() {
        (target_dir.join("debug").join(bundle::WORKER_BINARY), "dev")
    } else {
        command.args(["--release", "--target", TARGET]);
        (target_dir.join(TARGET).join("release").join(bundle::WORKER_BINARY), "release")
    };
    let spinner = ctx.ui.spinner(&format!("building the worker ({profile} profile)"));
    let output = command.output().context("failed to run cargo")?;
    if !output.status.success() {
        spinner.finish("worker build failed");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(anyhow::anyhow!("{}", tail.join("\n")))
            .context("failed to build `transcription-worker`")
            .hint("fix the build error above, or pass --worker-bin with a built worker");
    }
    spinner.finish(&format!("worker built: {}", binary.display()));
    Ok((binary, profile.to_string()))
}

/// Checks the binary's highest GLIBC symbol version against the AMI's; returns it as text.
fn check_glibc(bytes: &[u8], settings: &Settings, report: &mut Report) -> Option<String> {
    let (major, minor) = fleet::ami::AMI_GLIBC;
    let Some(needed) = bundle::highest_glibc(bytes) else {
        report.item(Mark::Info, "glibc", "the worker names no GLIBC symbol version (static?)");
        return None;
    };
    let text = format!("{}.{}", needed.0, needed.1);
    let ami = format!("{major}.{minor}");
    if needed <= (major, minor) {
        report.item(
            Mark::Passed,
            "glibc",
            format!("needs GLIBC {text}; the AMI (Ubuntu 22.04) has {ami}"),
        );
    } else if settings.is_local() {
        report.item(
            Mark::Info,
            "glibc",
            format!("needs GLIBC {text}, newer than the AMI's {ami}; fine locally"),
        );
    } else {
        report.item(
            Mark::Problem,
            "glibc",
            format!(
                "needs GLIBC {text} but the AMI (Ubuntu 22.04) has {ami}; build on Ubuntu \
                 22.04 or older"
            ),
        );
    }
    Some(text)
}

fn git_revision(root: &Path) -> Option<String> {
    let run = |args: &[&str]| Command::new("git").arg("-C").arg(root).args(args).output().ok();
    let head = run(&["rev-parse", "--short=12", "HEAD"]).filter(|o| o.status.success())?;
    let revision = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|o| !o.stdout.is_empty());
    Some(if dirty { format!("{revision}-dirty") } else { revision })
}

async fn upload(
    ctx: &Context,
    s3: &s3::Client,
    bucket: &str,
    manifest: &Manifest,
    files: &[(String, Vec<u8>, bool)],
    report: &mut Report,
) -> anyhow::Result<()> {
    let version = &manifest.version;
    let existing = bundle::read_manifest(s3, bucket, version).await?;
    if existing.as_ref().is_some_and(|m| m.files == manifest.files) {
        report.item(Mark::Unchanged, "bundle", format!("{version} already uploaded"));
    } else {
        let spinner = ctx.ui.spinner(&format!("uploading bundle {version}"));
        for (name, data, _) in files {
            put(s3, bucket, &manifest.key(name), data.clone()).await?;
        }
        put(s3, bucket, &manifest.key("SHA256SUMS"), manifest.sums().into_bytes()).await?;
        put(s3, bucket, &manifest.key("manifest.json"), serde_json::to_vec_pretty(manifest)?)
            .await?;
        spinner.finish(&format!("bundle {version} uploaded"));
        let size: u64 = manifest.files.iter().map(|f| f.size).sum();
        report.item(
            Mark::Created,
            "bundle",
            format!(
                "s3://{bucket}/{}{version}/ ({} files, {:.1} MB)",
                bundle::BUNDLE_PREFIX,
                files.len(),
                size as f64 / 1e6
            ),
        );
    }
    let current = bundle::read_current(s3, bucket).await?;
    if current.as_deref() == Some(version.as_str()) {
        report.item(Mark::Unchanged, "current", version);
    } else {
        put(s3, bucket, bundle::CURRENT_KEY, format!("{version}\n").into_bytes()).await?;
        let was = current.map_or("nothing".to_string(), |c| c.to_string());
        report.item(Mark::Updated, "current", format!("{version} (was {was})"));
    }
    Ok(())
}

async fn put(s3: &s3::Client, bucket: &str, key: &str, data: Vec<u8>) -> anyhow::Result<()> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(s3::primitives::ByteStream::from(data))
        .send()
        .await
        .aws_context(|| format!("failed to upload `s3://{bucket}/{key}`"))?;
    Ok(())
}
