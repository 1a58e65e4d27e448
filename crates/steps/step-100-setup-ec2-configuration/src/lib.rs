//! Step 100: the EC2 settings of the workers, found or made and written to `.env`.
//!
//! The region's GPU AMI (the Deep Learning AMI's public SSM parameter, else DescribeImages by
//! owner and name, newest first), the VPC (the default one unless `VPC_ID` is set), one subnet
//! per availability zone, a security group with no inbound rules (Session Manager instead of
//! SSH; SSH only from `--ssh-cidr`), and an optional key pair whose private key is written
//! with mode 0600 next to `.env` (`*.pem` is git-ignored). Path B's step-200 runs the same
//! code through [`fleet::setup`]. Safe to run again: what exists is reused.

use common::{Context, Mark, Report};
use fleet::setup::{SetupOptions, setup_ec2};

/// The step's name.
pub const STEP: &str = "step-100-setup-ec2-configuration";

/// Flags of step 100.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Allow SSH to the workers from this CIDR only, e.g. your address as 203.0.113.7/32.
    #[arg(long, value_name = "CIDR")]
    pub ssh_cidr: Option<String>,
    /// Create a key pair `<prefix>-worker-key` when KEY_NAME is empty.
    #[arg(long)]
    pub key_pair: bool,
}

/// Runs step 100.
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    ctx.ui.header(STEP, "finding the GPU AMI, network and security group");
    let settings = ctx.load_settings()?.settings;
    if let Some(cidr) = &args.ssh_cidr {
        common::naming::check_cidr(cidr)
            .map_err(|fix| common::cli::UsageError(format!("--ssh-cidr `{cidr}`: {fix}")))?;
    }
    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let clients = fleet::Clients::new(&config, &settings);
    let mut report = Report::new(STEP);
    let options = SetupOptions { ssh_cidr: args.ssh_cidr, key_pair: args.key_pair };
    let updates =
        setup_ec2(&clients, &settings, STEP, &ctx.project.root, &options, &mut report).await?;
    if !updates.is_empty() {
        let pairs: Vec<(&str, &str)> = updates.iter().map(|(k, v)| (*k, v.as_str())).collect();
        common::dotenv::update(&ctx.project.env_file, &pairs).map_err(|e| {
            anyhow::Error::new(e).context("failed to write the EC2 settings to .env")
        })?;
        let keys: Vec<&str> = updates.iter().map(|(k, _)| *k).collect();
        report.item(Mark::Updated, ".env", keys.join(", "));
    }
    report.summary = format!("EC2 settings ready ({})", report.change_summary());
    report.next.push("./scripts/step-101-validate-ec2-configuration.sh".to_string());
    Ok(report)
}
