//! step-211-push-to-ecr: pushes the image step-210 built and records where workers pull it.
//!
//! Against AWS: a fresh GetAuthorizationToken right before the push (a cached login expires
//! after 12 hours, case C27), `docker login --password-stdin` (the password never appears on
//! a command line or in a log), `docker push`, then DescribeImages must show the same digest.
//! ECR tags are immutable, so a tag that is already there is not pushed again.
//!
//! Local mode: the emulator's ECR has no registry to push to, so the image goes to the local
//! registry on 127.0.0.1 (started if needed) and the registry's manifest digest must match.
//!
//! Writes `WORKER_IMAGE_DIGEST` (`sha256:...`) and `WORKER_IMAGE` (`<registry>/<repo>@<digest>`,
//! what launch steps pull: by digest, never by a movable tag) into `.env`.

use common::docker::Docker;
use common::registry::LocalRegistry;
use common::sdk::ecr;
use common::{Context, HintExt, Mark, Report, RequireSetting, Settings};

/// The step's name.
pub const NAME: &str = "step-211-push-to-ecr";

/// `.env` key of the tag step-210 built.
pub const TAG_KEY: &str = "WORKER_IMAGE_TAG";
/// `.env` key of the pushed image's digest.
pub const DIGEST_KEY: &str = "WORKER_IMAGE_DIGEST";
/// `.env` key of the pull reference by digest.
pub const IMAGE_KEY: &str = "WORKER_IMAGE";

/// Flags of step-211.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Tag to push (default: WORKER_IMAGE_TAG from .env, written by step-210).
    #[arg(long)]
    pub tag: Option<String>,
}

/// Where the image went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// Repository reference without tag, e.g. `127.0.0.1:5050/fleet-dev-worker`.
    pub repository: String,
    /// The digest.
    pub digest: String,
}

/// Runs the step.
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    let settings = ctx.load_settings()?.settings;
    ctx.ui.header(ctx.step, "push the worker image");
    let mut report = Report::new(ctx.step);
    let docker = Docker::from_env(&ctx.env);
    docker.server_version().await?;

    let tag = match args.tag {
        Some(tag) => tag,
        None => env_value(&ctx, TAG_KEY)
            .ok_or_else(|| anyhow::anyhow!("no image tag: WORKER_IMAGE_TAG is not in .env"))
            .hint("run ./scripts/step-210-build-worker-image.sh first, or pass --tag")?,
    };
    let local_image = format!("{}:{tag}", settings.ecr_repository);
    if !docker.image_exists(&local_image).await? {
        return Err(anyhow::anyhow!("image `{local_image}` is not on this machine"))
            .hint("run ./scripts/step-210-build-worker-image.sh to build it");
    }

    let log = ctx.project.local_dir().join("docker/push.log");
    let pushed = if settings.is_local() {
        push_local(&ctx, &docker, &settings, &local_image, &tag, &log, &mut report).await?
    } else {
        push_ecr(&ctx, &docker, &settings, &local_image, &tag, &log, &mut report).await?
    };
    let image = format!("{}@{}", pushed.repository, pushed.digest);
    write_back(&ctx, &pushed.digest, &image, &mut report)?;

    report.summary = format!("{}:{tag} is {}", pushed.repository, pushed.digest);
    report.next.push("./scripts/step-220-launch-docker-worker.sh".to_string());
    report.data = serde_json::json!({
        "image": image, "digest": pushed.digest, "tag": tag, "repository": pushed.repository,
    });
    Ok(report)
}

/// A key of `.env` that the settings table does not know (yet).
fn env_value(ctx: &Context, key: &str) -> Option<String> {
    let file = common::dotenv::read(&ctx.project.env_file, &ctx.env).ok()?;
    file.get(key).map(|e| e.value.clone()).filter(|v| !v.is_empty())
}

async fn push_local(
    ctx: &Context,
    docker: &Docker,
    settings: &Settings,
    local_image: &str,
    tag: &str,
    log: &std::path::Path,
    report: &mut Report,
) -> anyhow::Result<Pushed> {
    let registry = LocalRegistry::for_project(&ctx.project, &ctx.env)?;
    if let common::registry::Started::Now(pid) = registry.ensure_running().await? {
        report.item(Mark::Created, "local registry", format!("{} (pid {pid})", registry.address()));
    }
    let repository = format!("{}/{}", registry.address(), settings.ecr_repository);
    let target = format!("{repository}:{tag}");
    docker.tag(local_image, &target).await?;
    let spinner = ctx.ui.spinner(&format!("pushing {target}"));
    let digest = docker.push(&target, log).await?;
    spinner.finish("pushed");
    report.item(Mark::Created, "pushed", format!("{target} ({digest})"));
    match registry.manifest_digest(&settings.ecr_repository, tag).await? {
        Some(found) if found == digest => report.item(Mark::Passed, "registry digest", found),
        Some(found) => {
            report.item(Mark::Problem, "registry digest", format!("{found} differs from {digest}"))
        }
        None => report.item(Mark::Problem, "registry digest", "the registry does not have the tag"),
    };
    Ok(Pushed { repository, digest })
}

async fn push_ecr(
    ctx: &Context,
    docker: &Docker,
    settings: &Settings,
    local_image: &str,
    tag: &str,
    log: &std::path::Path,
    report: &mut Report,
) -> anyhow::Result<Pushed> {
    let repository = settings.ecr_repository_uri.clone().require("ECR_REPOSITORY_URI")?;
    let config = common::aws::sdk_config(settings, &ctx.env, &Default::default()).await;
    let client = ecr::Client::new(&config);
    if let Some(digest) = ecr_digest(&client, &settings.ecr_repository, tag).await? {
        report.item(
            Mark::Unchanged,
            "pushed",
            format!("{repository}:{tag} is already in ECR ({digest}); tags are immutable"),
        );
        return Ok(Pushed { repository, digest });
    }

    // A fresh token right before the push: a cached login may have expired.
    let login = common::ecr::fresh_login(&client).await?;
    docker.login(&login.registry, &login.user, &login.password).await?;
    report.item(Mark::Passed, "registry login", &login.registry);
    let target = format!("{repository}:{tag}");
    docker.tag(local_image, &target).await?;
    let spinner = ctx.ui.spinner(&format!("pushing {target}"));
    let digest = docker.push(&target, log).await?;
    spinner.finish("pushed");
    report.item(Mark::Created, "pushed", format!("{target} ({digest})"));
    match ecr_digest(&client, &settings.ecr_repository, tag).await? {
        Some(found) if found == digest => report.item(Mark::Passed, "ECR digest", found),
        Some(found) => {
            report.item(Mark::Problem, "ECR digest", format!("{found} differs from {digest}"))
        }
        None => report.item(Mark::Problem, "ECR digest", "DescribeImages does not list the tag"),
    };
    Ok(Pushed { repository, digest })
}

/// The digest ECR holds for `repository:tag`, or `None` when the tag is not there.
pub async fn ecr_digest(
    client: &ecr::Client,
    repository: &str,
    tag: &str,
) -> anyhow::Result<Option<String>> {
    use common::aws::SdkResultExt;
    let id = ecr::types::ImageIdentifier::builder().image_tag(tag).build();
    let result = client.describe_images().repository_name(repository).image_ids(id).send().await;
    if let Err(e) = &result
        && common::aws::error_code(e) == Some("ImageNotFoundException")
    {
        return Ok(None);
    }
    let out = result.aws_context(|| format!("failed to describe image `{repository}:{tag}`"))?;
    Ok(out.image_details().first().and_then(|d| d.image_digest()).map(str::to_string))
}

fn write_back(ctx: &Context, digest: &str, image: &str, report: &mut Report) -> anyhow::Result<()> {
    let unchanged = env_value(ctx, DIGEST_KEY).as_deref() == Some(digest)
        && env_value(ctx, IMAGE_KEY).as_deref() == Some(image);
    if unchanged {
        return Ok(());
    }
    let path = &ctx.project.env_file;
    common::dotenv::update(path, &[(DIGEST_KEY, digest), (IMAGE_KEY, image)]).map_err(|e| {
        anyhow::Error::new(e).context(format!("failed to write `{}`", path.display()))
    })?;
    report.item(Mark::Updated, ".env", format!("wrote {DIGEST_KEY}, {IMAGE_KEY}"));
    Ok(())
}
