//! Shared foundation of the transcription fleet: settings, AWS helpers, output and prompts.
//!
//! Every step binary and the worker build on this crate. AWS service clients are behind
//! features (`sts`, `sqs`, `s3`, `iam`, `ec2`, `ecr`, `ssm`) so each binary links only the
//! services it calls.

pub mod aws;
pub mod cli;
pub mod containers;
pub mod deployment_path;
pub mod docker;
pub mod dotenv;
#[cfg(feature = "ecr")]
pub mod ecr;
pub mod iam_policy;
pub mod job;
pub mod keys;
pub mod logging;
pub mod measurements;
pub mod naming;
pub mod registry;
pub mod report;
pub mod settings;
pub mod tags;
pub mod ui;

pub use cli::{Context, GlobalArgs, HintExt, Project, RequireSetting};
pub use report::{Mark, Report, Status};
pub use settings::Settings;

/// The AWS SDK crates of the enabled services, so steps need no SDK dependency of their own.
pub mod sdk {
    #[cfg(feature = "ec2")]
    pub use aws_sdk_ec2 as ec2;
    #[cfg(feature = "ecr")]
    pub use aws_sdk_ecr as ecr;
    #[cfg(feature = "iam")]
    pub use aws_sdk_iam as iam;
    #[cfg(feature = "s3")]
    pub use aws_sdk_s3 as s3;
    #[cfg(feature = "sqs")]
    pub use aws_sdk_sqs as sqs;
    #[cfg(feature = "ssm")]
    pub use aws_sdk_ssm as ssm;
    #[cfg(feature = "sts")]
    pub use aws_sdk_sts as sts;
}
