//! Launch machinery shared by both deployment paths, and the local runner.
//!
//! Path A (step-1NN, WhisperX installed on the instance) and Path B (step-2NN, the worker in a
//! Docker container) launch the same way and differ only in their user data:
//!
//! - [`ami`] finds the region's GPU AMI (the Deep Learning AMI's public SSM parameter, else
//!   DescribeImages by owner and name, newest first) and checks a configured one (C26);
//! - [`network`] finds the VPC and one subnet per availability zone, keeps the workers'
//!   security group free of inbound rules (SSH only from a configured CIDR) and makes the
//!   optional key pair;
//! - [`template`] keeps the launch template (IMDSv2, hop limit 2, encrypted gp3 root volume,
//!   terminate on shutdown, the instance profile, tags);
//! - [`userdata`] renders a path's bootstrap template and checks it against the 16 KB limit;
//! - [`launch`] places spot workers across instance types × subnets, moving on after
//!   InsufficientInstanceCapacity, optionally falling back to on-demand (C22), explains quota
//!   errors (C23) and retries while a new instance profile propagates (C25);
//! - [`launcher`] runs a path's launch end to end (prerequisites, template, launch, wait);
//! - [`setup`] finds or makes the EC2 settings (step-100/200) and validates them (step-101);
//! - [`traditional`] holds Path A's bootstrap user data and bundle file list;
//! - [`workers`] finds workers by their tags and waits for them to run;
//! - [`health`] judges each worker from its instance state and its status object;
//! - [`health_check`] is what the health-check steps share: flags, checking a path's workers;
//! - [`bundle`] is the Path A worker bundle: manifest, content-addressed version, `current`;
//! - [`local`] is NOT cloud code: in local mode it starts the real worker process for an
//!   instance the emulator launched, as the bootstrap would on a real instance.

pub mod ami;
pub mod bundle;
pub mod docker_path;
pub mod health;
pub mod health_check;
pub mod launch;
pub mod launcher;
pub mod local;
pub mod local_docker;
pub mod network;
pub mod setup;
pub mod template;
pub mod traditional;
pub mod userdata;
pub mod workers;

use common::Settings;
use common::deployment_path::DeploymentPath;

pub use common::sdk::{ec2, iam, s3, ssm};

/// Tag naming what a resource is for; workers carry [`ROLE_WORKER`].
pub const ROLE_TAG: &str = "Role";
/// Value of [`ROLE_TAG`] on worker instances.
pub const ROLE_WORKER: &str = "worker";
/// Tag naming the deployment path of a worker: `traditional` or `docker`.
pub const PATH_TAG: &str = "DeploymentPath";
/// The name tag.
pub const NAME_TAG: &str = "Name";

/// The AWS clients the launch code uses.
#[derive(Debug, Clone)]
pub struct Clients {
    /// EC2.
    pub ec2: ec2::Client,
    /// S3, path-style against an emulator.
    pub s3: s3::Client,
    /// SSM (public parameters, Run Command).
    pub ssm: ssm::Client,
    /// IAM (instance profile propagation).
    pub iam: iam::Client,
}

impl Clients {
    /// Clients for `settings` from one SDK configuration.
    pub fn new(config: &common::aws::SdkConfig, settings: &Settings) -> Self {
        Self {
            ec2: ec2::Client::new(config),
            s3: common::aws::s3_client(config, settings),
            ssm: ssm::Client::new(config),
            iam: iam::Client::new(config),
        }
    }
}

/// Name of the worker instance profile made by step-010.
pub fn instance_profile_name(settings: &Settings) -> String {
    format!("{}-worker-profile", settings.prefix())
}

/// Name of the workers' security group.
pub fn security_group_name(settings: &Settings) -> String {
    format!("{}-worker-sg", settings.prefix())
}

/// Name of a path's launch template.
pub fn launch_template_name(settings: &Settings, path: DeploymentPath) -> String {
    format!("{}-worker-{}", settings.prefix(), path.as_str())
}

/// Name tag of the `n`th worker: `<prefix>-worker-<n>`.
pub fn worker_name(settings: &Settings, n: u32) -> String {
    format!("{}-worker-{n}", settings.prefix())
}

/// The tags of a worker instance of `path`: the standard tags plus role and path.
pub fn worker_tags(settings: &Settings, step: &str, path: DeploymentPath) -> Vec<(String, String)> {
    let mut tags = common::tags::standard(settings, step);
    tags.push((ROLE_TAG.to_string(), ROLE_WORKER.to_string()));
    tags.push((PATH_TAG.to_string(), path.as_str().to_string()));
    tags
}

/// EC2 tags from key/value pairs.
pub fn ec2_tags(pairs: &[(String, String)]) -> Vec<ec2::types::Tag> {
    pairs.iter().map(|(k, v)| ec2::types::Tag::builder().key(k).value(v).build()).collect()
}

/// A tag specification for `resource` with `pairs`.
pub fn tag_spec(
    resource: ec2::types::ResourceType,
    pairs: &[(String, String)],
) -> ec2::types::TagSpecification {
    ec2::types::TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(ec2_tags(pairs)))
        .build()
}
