//! Step 101: check the EC2 settings step-100 wrote.
//!
//! The AMI exists and is available in this region (AMI ids are per region, C26); each subnet
//! exists and belongs to the VPC; each instance type is offered in those zones; the security
//! group has exactly the intended inbound rules; the Path A user data fits EC2's 16 KB limit.

use common::{Context, Mark, Report};

/// The step's name.
pub const STEP: &str = "step-101-validate-ec2-configuration";

/// Flags of step 101 (none besides the global ones).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {}

/// Runs step 101.
pub async fn run(ctx: Context, _args: Args) -> anyhow::Result<Report> {
    ctx.ui.header(STEP, "checking the EC2 settings");
    let settings = ctx.load_settings()?.settings;
    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let clients = fleet::Clients::new(&config, &settings);
    let mut report = Report::new(STEP);
    fleet::setup::validate_ec2(&clients, &settings, &mut report).await?;
    match fleet::traditional::user_data(&settings) {
        Ok(text) => report.item(
            Mark::Passed,
            "user data",
            format!("{} of {} bytes", text.len(), fleet::userdata::USER_DATA_LIMIT),
        ),
        Err(e) => report.item(Mark::Problem, "user data", format!("{e:#}")),
    };
    report.summary = match report.count(Mark::Problem) {
        0 => "the EC2 settings are valid".to_string(),
        n => format!("{n} problem(s) in the EC2 settings"),
    };
    report.next.push(if report.count(Mark::Problem) == 0 {
        "./scripts/step-110-deploy-worker-code.sh".to_string()
    } else {
        "./scripts/step-100-setup-ec2-configuration.sh (repairs what it can)".to_string()
    });
    Ok(report)
}
