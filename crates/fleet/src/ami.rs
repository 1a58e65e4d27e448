//! The region's GPU AMI: the Deep Learning AMI, found per region and checked (case C26).
//!
//! AMI ids are per region, so an id copied from another region fails at launch with
//! `InvalidAMIID.NotFound`. The AMI is therefore resolved in the configured region: first the
//! public SSM parameter AWS keeps for the Deep Learning AMI, then DescribeImages by owner and
//! name, newest first (the local emulator knows no such parameter, so that path always runs
//! there).

use anyhow::Context as _;
use common::HintExt;
use common::aws::{SdkResultExt, error_code};

use crate::{ec2, ssm};

/// Public SSM parameter holding the newest Deep Learning Base OSS Nvidia Driver AMI (Ubuntu
/// 22.04, glibc 2.35) of the region.
pub const DLAMI_PARAMETER: &str =
    "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id";

/// Name pattern of that AMI for DescribeImages.
pub const DLAMI_NAME_PATTERN: &str =
    "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *";

/// Owner of the Deep Learning AMIs.
pub const DLAMI_OWNER: &str = "amazon";

/// glibc version of the AMI's Ubuntu 22.04; the worker binary must need no newer symbols.
pub const AMI_GLIBC: (u32, u32) = (2, 35);

/// How an AMI was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmiSource {
    /// `AMI_ID` in the settings.
    Configured,
    /// The public SSM parameter.
    SsmParameter,
    /// DescribeImages by owner and name.
    ImageSearch,
}

impl AmiSource {
    /// How the report says it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Configured => "from AMI_ID",
            Self::SsmParameter => "from the public SSM parameter",
            Self::ImageSearch => "newest Deep Learning AMI by name",
        }
    }
}

/// An AMI as the steps show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ami {
    /// The id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `available`, `pending`, ...
    pub state: String,
    /// Creation date as AWS gives it.
    pub created: String,
    /// Architecture (`x86_64`).
    pub architecture: String,
    /// Device name of the root volume (`/dev/sda1` on Ubuntu AMIs).
    pub root_device: String,
}

/// The newest GPU AMI of the region: the SSM parameter first, then DescribeImages.
pub async fn find_gpu_ami(
    ec2: &ec2::Client,
    ssm: &ssm::Client,
    region: &str,
) -> anyhow::Result<(Ami, AmiSource)> {
    if let Some(id) = dlami_from_parameter(ssm).await {
        if let Some(ami) = describe_ami(ec2, &id).await? {
            return Ok((ami, AmiSource::SsmParameter));
        }
        tracing::info!(%id, "the SSM parameter names an AMI DescribeImages does not know");
    }
    let ami = newest_dlami(ec2).await?.with_context(|| {
        format!("no Deep Learning AMI (`{DLAMI_NAME_PATTERN}`, owner {DLAMI_OWNER}) in `{region}`")
    });
    let ami =
        ami.hint("set AMI_ID in .env to a GPU AMI of this region (Ubuntu 22.04, NVIDIA driver)")?;
    Ok((ami, AmiSource::ImageSearch))
}

/// The AMI id in the public SSM parameter, or `None` when it cannot be read.
async fn dlami_from_parameter(ssm: &ssm::Client) -> Option<String> {
    match ssm.get_parameter().name(DLAMI_PARAMETER).send().await {
        Ok(out) => out.parameter().and_then(|p| p.value()).map(str::to_string),
        Err(e) => {
            tracing::info!(
                "the Deep Learning AMI parameter is not readable ({}); searching by name",
                common::aws::describe(&e)
            );
            None
        }
    }
}

/// The newest available x86_64 Deep Learning AMI by name.
pub async fn newest_dlami(ec2: &ec2::Client) -> anyhow::Result<Option<Ami>> {
    let filter =
        |name: &str, value: &str| ec2::types::Filter::builder().name(name).values(value).build();
    let out = ec2
        .describe_images()
        .owners(DLAMI_OWNER)
        .filters(filter("name", DLAMI_NAME_PATTERN))
        .filters(filter("state", "available"))
        .filters(filter("architecture", "x86_64"))
        .send()
        .await
        .aws_context(|| "failed to search for the Deep Learning AMI".to_string())?;
    let mut images: Vec<Ami> = out.images().iter().map(ami_of).collect();
    images.sort_by(|a, b| b.created.cmp(&a.created));
    Ok(images.into_iter().next())
}

/// The AMI `id` of this region, or `None` when the region does not have it.
pub async fn describe_ami(ec2: &ec2::Client, id: &str) -> anyhow::Result<Option<Ami>> {
    match ec2.describe_images().image_ids(id).send().await {
        Ok(out) => Ok(out.images().first().map(ami_of)),
        Err(e) if error_code(&e).is_some_and(|c| c.starts_with("InvalidAMIID")) => Ok(None),
        Err(e) => Err(e).aws_context(|| format!("failed to describe AMI `{id}`")),
    }
}

fn ami_of(image: &ec2::types::Image) -> Ami {
    Ami {
        id: image.image_id().unwrap_or_default().to_string(),
        name: image.name().unwrap_or_default().to_string(),
        state: image.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
        created: image.creation_date().unwrap_or_default().to_string(),
        architecture: image.architecture().map(|a| a.as_str().to_string()).unwrap_or_default(),
        root_device: image.root_device_name().unwrap_or("/dev/sda1").to_string(),
    }
}

/// Why `ami` cannot be used, or `None` when it can.
pub fn unusable_reason(ami: &Ami) -> Option<String> {
    if ami.state != "available" {
        return Some(format!("AMI `{}` is {}, not available", ami.id, ami.state));
    }
    if !ami.architecture.is_empty() && ami.architecture != "x86_64" {
        return Some(format!(
            "AMI `{}` is for {}, the worker is built for x86_64",
            ami.id, ami.architecture
        ));
    }
    None
}
