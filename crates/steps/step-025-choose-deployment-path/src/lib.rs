//! step-025-choose-deployment-path: Path A (traditional EC2) or Path B (Docker on EC2 GPU).
//!
//! The choice comes from `--path` or from a menu that shows the trade-offs. It is written to
//! `.deployment-path` through `common::deployment_path` (the one reader and writer of that
//! file), `scripts/launch-worker.sh` and `scripts/check-health.sh` become relative links to
//! the chosen path's scripts, and `DEPLOYMENT_COMPARISON.md` is regenerated from live spot
//! prices and the figures earlier runs measured. Switching an existing choice asks first.

pub mod comparison;
pub mod links;

use common::deployment_path::{self, DeploymentPath};
use common::sdk::ec2;
use common::{Context, Mark, Report, Settings};

/// The step's name.
pub const NAME: &str = "step-025-choose-deployment-path";

/// Flags of step-025.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// The path to use; without it a menu asks.
    #[arg(long, value_enum)]
    pub path: Option<DeploymentPath>,
}

/// What each path costs and gives, shown in the menu.
pub fn trade_offs(path: DeploymentPath) -> String {
    let detail = match path {
        DeploymentPath::Traditional => {
            "nothing to build; slower first boot (installs WhisperX and models); \
             fewest moving parts"
        }
        DeploymentPath::Docker => {
            "image built once, pinned and reused; faster, identical boots; \
             needs ECR and Docker's GPU toolkit"
        }
    };
    format!("{} — {detail}", path.title())
}

/// What switching away from `from` means for the fleet.
pub fn switch_meaning(from: DeploymentPath, to: DeploymentPath) -> String {
    format!(
        "new workers launch as Path {} ({to}); Path {} ({from}) workers already running keep \
         running (and billing) until ./scripts/step-999-terminate-workers.sh terminates them",
        to.letter(),
        from.letter(),
    )
}

/// Runs the step.
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    let settings = ctx.load_settings()?.settings;
    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    run_with(ctx, args, &settings, &ec2::Client::new(&config)).await
}

/// Runs the step with the given EC2 client.
pub async fn run_with(
    mut ctx: Context,
    args: Args,
    settings: &Settings,
    ec2: &ec2::Client,
) -> anyhow::Result<Report> {
    ctx.ui.header(ctx.step, "deployment path");
    let mut report = Report::new(ctx.step);
    let current = current_choice(&ctx, &mut report);
    let wanted = match args.path {
        Some(path) => path,
        None => ask(&mut ctx, current.as_ref().map(|c| c.path))?,
    };
    let chosen = match &current {
        Some(c) if c.path != wanted => confirm_switch(&mut ctx, c.path, wanted)?,
        _ => wanted,
    };

    record_choice(&ctx, current.as_ref(), chosen, &mut report)?;
    links::ensure_links(&ctx.project.root.join("scripts"), chosen, &mut report)?;

    let prices = comparison::spot_prices(ec2, settings).await.map_err(|e| format!("{e:#}"));
    if let Err(e) = &prices {
        report.item(Mark::Info, "spot prices", e.clone());
    }
    let measured = common::measurements::load(&ctx.project)?;
    let text = comparison::render(settings, chosen, &prices, &measured);
    let path = comparison::write(&ctx.project.root, &text)?;
    report.item(Mark::Info, comparison::FILE_NAME, format!("regenerated: {}", path.display()));

    report.summary = format!("{} ({})", chosen.title(), report.change_summary());
    report.data = serde_json::json!({ "path": chosen.as_str() });
    Ok(report)
}

fn current_choice(ctx: &Context, report: &mut Report) -> Option<deployment_path::Choice> {
    match deployment_path::read(&ctx.project) {
        Ok(Some(choice)) => {
            if let Some(warning) = &choice.warning {
                ctx.ui.warn(warning);
            }
            report.item(Mark::Info, "current path", choice.path.title());
            Some(choice)
        }
        Ok(None) => None,
        Err(e) => {
            report.item(Mark::Info, "current path", format!("{e:#}; choosing again"));
            None
        }
    }
}

fn ask(ctx: &mut Context, current: Option<DeploymentPath>) -> anyhow::Result<DeploymentPath> {
    if let Some(path) = current {
        ctx.ui.note(&format!("current choice: {}", path.title()));
    }
    let options: Vec<String> = DeploymentPath::ALL.iter().map(|p| trade_offs(*p)).collect();
    let default = DeploymentPath::ALL.iter().position(|p| Some(*p) == current).unwrap_or(0);
    let index = ctx.prompter.select("--path", "Which deployment path?", &options, default)?;
    DeploymentPath::ALL.get(index).copied().ok_or_else(|| anyhow::anyhow!("no path number {index}"))
}

fn confirm_switch(
    ctx: &mut Context,
    from: DeploymentPath,
    to: DeploymentPath,
) -> anyhow::Result<DeploymentPath> {
    let meaning = switch_meaning(from, to);
    ctx.ui.note(&format!("switching from {from} to {to}: {meaning}"));
    let question = format!("Switch to {}?", to.title());
    let yes = ctx
        .prompter
        .confirm("switch", &question, false)
        .map_err(|e| e.context(format!("not switched from {from} to {to}: {meaning}")))?;
    Ok(if yes { to } else { from })
}

fn record_choice(
    ctx: &Context,
    current: Option<&deployment_path::Choice>,
    chosen: DeploymentPath,
    report: &mut Report,
) -> anyhow::Result<()> {
    let label = deployment_path::FILE_NAME;
    let line = deployment_path::render(chosen).trim_end().to_string();
    match current {
        Some(c) if c.path == chosen && c.warning.is_none() => {
            report.item(Mark::Unchanged, label, line);
            return Ok(());
        }
        Some(c) => report.item(Mark::Updated, label, format!("{} → {line}", c.path.as_str())),
        None => report.item(Mark::Created, label, line),
    };
    deployment_path::write(&ctx.project, chosen)
}
