//! A path's launch from start to finish, shared by step-120 (Path A) and step-220 (Path B):
//! check prerequisites, keep the launch template, launch what is missing, wait until running.
//!
//! Running it again launches nothing when the path already has the workers asked for.

use std::time::{Duration, Instant};

use common::cli::missing_setting;
use common::deployment_path::DeploymentPath;
use common::ui::Ui;
use common::{HintExt, Mark, Report, RequireSetting, Settings};

use crate::launch::{self, LaunchPlan, Launched, Pacing};
use crate::template::{self, TemplateSpec};
use crate::workers::{self, LIVE_STATES, WorkerInstance};
use crate::{Clients, ami, iam, network};

/// What to launch.
#[derive(Debug, Clone)]
pub struct LaunchRequest {
    /// The path.
    pub path: DeploymentPath,
    /// The step launching (the `CreatedBy` tag).
    pub step: &'static str,
    /// Workers wanted in total; `None` means one, unless some already run.
    pub count: Option<u32>,
    /// Rendered user data (size-checked).
    pub user_data: String,
    /// Waits between attempts.
    pub pacing: Pacing,
    /// How long to wait for `running`.
    pub wait_timeout: Duration,
}

/// What the launch found and did.
#[derive(Debug, Clone, Default)]
pub struct LaunchSummary {
    /// Live workers that were there before.
    pub existing: Vec<WorkerInstance>,
    /// Workers launched now.
    pub launched: Vec<Launched>,
    /// Seconds from the first RunInstances call to `running`.
    pub launch_seconds: f64,
}

impl LaunchSummary {
    /// Instance ids of every live worker: existing and new.
    pub fn all_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.existing.iter().map(|w| w.instance_id.clone()).collect();
        ids.extend(self.launched.iter().map(|l| l.instance_id.clone()));
        ids
    }

    /// Writes the launch of `path` into `report`: the summary line, and the data
    /// (`instance_ids`, `launched`).
    pub fn finish_report(&self, path: DeploymentPath, report: &mut Report) {
        let letter = path.letter();
        report.summary = match self.launched.len() {
            0 => format!(
                "{} Path {letter} worker(s) already live; nothing launched",
                self.existing.len()
            ),
            n => format!("launched {n} Path {letter} worker(s) in {:.0} s", self.launch_seconds),
        };
        report.data = serde_json::json!({
            "instance_ids": self.all_ids(),
            "launched": self.launched,
        });
    }
}

/// Launches the workers `request` asks for, reporting each step in `report`.
pub async fn launch_path(
    clients: &Clients,
    settings: &Settings,
    ui: &Ui,
    request: &LaunchRequest,
    report: &mut Report,
) -> anyhow::Result<LaunchSummary> {
    let ready = Prerequisites::check(settings)?;
    let profile = crate::instance_profile_name(settings);
    wait_for_instance_profile(&clients.iam, &profile, request.pacing.iam_budget, ui).await?;
    report.item(Mark::Passed, "instance profile", &profile);

    let existing = workers::find_workers(&clients.ec2, settings, request.path, LIVE_STATES).await?;
    let wanted = request.count.unwrap_or(1).min(settings.ec2.max_workers);
    if request.count.is_some_and(|c| c > settings.ec2.max_workers) {
        ui.warn(&format!("MAX_WORKERS is {}; launching up to that many", settings.ec2.max_workers));
    }
    for w in &existing {
        report.item(
            Mark::Unchanged,
            "worker",
            format!("{} {} ({}, {})", w.name, w.instance_id, w.state, w.instance_type),
        );
    }
    let missing = wanted.saturating_sub(existing.len() as u32);
    let mut summary = LaunchSummary { existing, ..Default::default() };
    if missing == 0 {
        return Ok(summary);
    }

    let found = ami::describe_ami(&clients.ec2, &ready.ami_id).await?;
    let root_device = found.map_or("/dev/sda1".to_string(), |a| a.root_device);
    let tags = crate::worker_tags(settings, request.step, request.path);
    let spec = TemplateSpec {
        name: crate::launch_template_name(settings, request.path),
        ami_id: ready.ami_id.clone(),
        root_device,
        root_volume_gb: settings.ec2.root_volume_gb,
        security_group_id: ready.security_group_id.clone(),
        key_name: settings.ec2.key_name.clone(),
        instance_profile: profile,
        user_data: request.user_data.clone(),
        tags: tags.clone(),
    };
    let (template, mark) = template::ensure_template(&clients.ec2, &spec).await?;
    report.item(
        mark,
        "launch template",
        format!("{} ({} v{})", spec.name, template.id, template.version),
    );

    let subnets = network::describe_subnets(&clients.ec2, &settings.ec2.subnet_ids).await?;
    let plan = LaunchPlan {
        template,
        instance_types: settings.ec2.instance_types.clone(),
        subnets,
        allow_on_demand: settings.ec2.allow_on_demand,
        tags,
    };
    let names = workers::next_names(settings, &summary.existing, missing);
    let started = Instant::now();
    let (launched, error) =
        launch::launch_workers(&clients.ec2, &plan, &names, wanted, &request.pacing, ui).await;
    let ids: Vec<String> = launched.iter().map(|l| l.instance_id.clone()).collect();
    workers::wait_for_running(&clients.ec2, &ids, request.wait_timeout, ui).await?;
    summary.launch_seconds = started.elapsed().as_secs_f64();
    for l in &launched {
        report.item(
            Mark::Created,
            "worker",
            format!(
                "{} {} ({} {} in {})",
                l.name,
                l.instance_id,
                l.market.as_str(),
                l.instance_type,
                l.zone
            ),
        );
    }
    summary.launched = launched;
    if let Some(error) = error {
        if summary.launched.is_empty() {
            return Err(error.into_anyhow(&settings.region));
        }
        report.item(
            Mark::Problem,
            "launch",
            format!("{error}; fix: {}", error.fix(&settings.region)),
        );
    }
    Ok(summary)
}

/// The settings a launch needs, present.
struct Prerequisites {
    ami_id: String,
    security_group_id: String,
}

impl Prerequisites {
    fn check(settings: &Settings) -> anyhow::Result<Self> {
        let ami_id = settings.ec2.ami_id.clone().require("AMI_ID")?;
        let security_group_id =
            settings.ec2.security_group_id.clone().require("SECURITY_GROUP_ID")?;
        if settings.ec2.subnet_ids.is_empty() {
            return Err(missing_setting("SUBNET_IDS"));
        }
        if settings.queue.url.is_none() {
            return Err(missing_setting("QUEUE_URL").context("workers would have no job queue"));
        }
        Ok(Self { ami_id, security_group_id })
    }
}

/// Waits until instance profile `name` lists a role (IAM is eventually consistent, C25).
pub async fn wait_for_instance_profile(
    iam: &iam::Client,
    name: &str,
    budget: Duration,
    ui: &Ui,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut wait = Duration::from_millis(500);
    loop {
        match iam.get_instance_profile().instance_profile_name(name).send().await {
            Ok(out) if out.instance_profile().is_some_and(|p| !p.roles().is_empty()) => {
                return Ok(());
            }
            Ok(_) if started.elapsed() < budget => {
                ui.note(&format!("waiting for IAM: `{name}` has no role yet"));
            }
            Ok(_) => {
                return Err(anyhow::anyhow!("instance profile `{name}` has no role"))
                    .hint("run ./scripts/step-010-setup-iam-permissions.sh");
            }
            Err(e) if common::aws::error_code(&e) == Some("NoSuchEntity") => {
                return Err(anyhow::anyhow!("instance profile `{name}` does not exist"))
                    .hint("run ./scripts/step-010-setup-iam-permissions.sh, which creates it");
            }
            Err(e) => {
                use common::aws::SdkResultExt as _;
                return Err(e).aws_context(|| format!("failed to read instance profile `{name}`"));
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(10));
    }
}
