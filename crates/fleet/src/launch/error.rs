//! How launch errors are classified and explained (C22, C23, C25).

use std::fmt;

use super::Market;

/// Error codes that mean "no room here, try elsewhere".
pub const CAPACITY_CODES: &[&str] = &[
    "InsufficientInstanceCapacity",
    "InsufficientCapacity",
    "InsufficientHostCapacity",
    "SpotMaxPriceTooLow",
    "Unsupported",
    "InsufficientFreeAddressesInSubnet",
];

/// Error codes that mean an account quota is reached.
pub const QUOTA_CODES: &[&str] =
    &["VcpuLimitExceeded", "MaxSpotInstanceCountExceeded", "InstanceLimitExceeded"];

/// One try that did not give an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Instance type tried.
    pub instance_type: String,
    /// Zone tried.
    pub zone: String,
    /// Market tried.
    pub market: Market,
    /// What AWS said.
    pub outcome: String,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} in {}: {}",
            self.market.as_str(),
            self.instance_type,
            self.zone,
            self.outcome
        )
    }
}

/// An account quota stopped the launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaProblem {
    /// The error code.
    pub code: String,
    /// AWS's message.
    pub message: String,
    /// The instance type asked for.
    pub instance_type: String,
    /// Spot or on-demand.
    pub market: Market,
    /// vCPUs of one instance of that type, when known.
    pub vcpus_per_instance: Option<u32>,
    /// Workers wanted in total (running and new).
    pub workers_wanted: u32,
}

impl QuotaProblem {
    /// The quota's name and code in Service Quotas.
    pub fn quota(&self) -> (&'static str, &'static str) {
        let family_p = self.instance_type.starts_with('p');
        match (self.market, family_p) {
            (Market::Spot, false) => ("All G and VT Spot Instance Requests", "L-3819A6DF"),
            (Market::Spot, true) => ("All P Spot Instance Requests", "L-7212CCBC"),
            (Market::OnDemand, false) => ("Running On-Demand G and VT instances", "L-DB2E81BA"),
            (Market::OnDemand, true) => ("Running On-Demand P instances", "L-417A185B"),
        }
    }

    /// vCPUs the quota must allow for all wanted workers, when the type's size is known.
    pub fn vcpus_needed(&self) -> Option<u32> {
        self.vcpus_per_instance.map(|v| v * self.workers_wanted)
    }

    /// How to raise the quota.
    pub fn fix(&self, region: &str) -> String {
        let (_, code) = self.quota();
        let value = self.vcpus_needed().map_or("<vCPUs>".to_string(), |v| v.to_string());
        format!(
            "request an increase in the Service Quotas console (EC2, `{}`) or run: aws \
             service-quotas request-service-quota-increase --region {region} --service-code ec2 \
             --quota-code {code} --desired-value {value}; new accounts often start at 0 for GPU \
             instances, and quotas count vCPUs, not instances",
            self.quota().0
        )
    }
}

impl fmt::Display for QuotaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, code) = self.quota();
        write!(
            f,
            "{} quota reached for {} ({}): ",
            self.market.as_str(),
            self.instance_type,
            self.code
        )?;
        match (self.vcpus_per_instance, self.vcpus_needed()) {
            (Some(each), Some(total)) => write!(
                f,
                "{} worker(s) × {each} vCPUs need {total} vCPUs of quota `{name}` ({code})",
                self.workers_wanted
            ),
            _ => write!(f, "raise quota `{name}` ({code})"),
        }
    }
}

/// Why a launch failed.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// No candidate had capacity; every attempt is listed.
    #[error("no capacity for a worker after {} attempt(s):\n    {}", .0.len(), list(.0))]
    NoCapacity(Vec<Attempt>),
    /// An account quota is reached.
    #[error("{0}")]
    Quota(QuotaProblem),
    /// The instance profile was still not usable when the time was up.
    #[error("the instance profile `{profile}` was still rejected after {waited:.0} s: {message}")]
    IamPropagation {
        /// The profile.
        profile: String,
        /// Seconds waited.
        waited: f64,
        /// The last message.
        message: String,
    },
    /// Anything else AWS refused.
    #[error("failed to launch {market} {instance_type} in {zone}: {message}")]
    Refused {
        /// Market tried.
        market: &'static str,
        /// Type tried.
        instance_type: String,
        /// Zone tried.
        zone: String,
        /// `Code: message`.
        message: String,
    },
    /// Nothing to try.
    #[error("no instance types or no subnets to launch into")]
    NothingToTry,
}

fn list(attempts: &[Attempt]) -> String {
    attempts.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n    ")
}

impl LaunchError {
    /// What to do about it.
    pub fn fix(&self, region: &str) -> String {
        match self {
            Self::NoCapacity(_) => "spot GPU capacity comes and goes: run again later, add \
                instance types to INSTANCE_TYPES, or set ALLOW_ON_DEMAND=true"
                .to_string(),
            Self::Quota(q) => q.fix(region),
            Self::IamPropagation { .. } => "run step-010 again (it waits until the role is \
                attached to the profile), then this step"
                .to_string(),
            Self::Refused { .. } => "check the settings named in the message; step-101 \
                validates the EC2 configuration"
                .to_string(),
            Self::NothingToTry => {
                "run step-100, which writes INSTANCE_TYPES and SUBNET_IDS".to_string()
            }
        }
    }

    /// The error with its fix as a `hint:`.
    pub fn into_anyhow(self, region: &str) -> anyhow::Error {
        let hint = self.fix(region);
        let error: Result<(), LaunchError> = Err(self);
        match common::HintExt::hint(error, hint) {
            Err(e) => e,
            Ok(()) => anyhow::anyhow!("unreachable"),
        }
    }
}

/// How a RunInstances error is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Try the next candidate.
    Capacity,
    /// Stop: an account quota.
    Quota,
    /// Retry the same candidate: IAM has not propagated yet.
    IamPropagation,
    /// Stop: anything else.
    Fatal,
}

/// Classifies an EC2 error code and message.
pub fn classify(code: &str, message: &str) -> ErrorClass {
    if CAPACITY_CODES.contains(&code) {
        ErrorClass::Capacity
    } else if QUOTA_CODES.contains(&code) {
        ErrorClass::Quota
    } else if code == "InvalidParameterValue" && is_profile_propagation(message) {
        ErrorClass::IamPropagation
    } else {
        ErrorClass::Fatal
    }
}

/// Whether an InvalidParameterValue message is about a not-yet-usable instance profile:
/// `Value (x) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile
/// name`, the same for `.arn`, or a profile that "has no associated IAM Roles".
pub fn is_profile_propagation(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    (m.contains("iaminstanceprofile.name") || m.contains("iaminstanceprofile.arn"))
        && m.contains("invalid")
        || m.contains("invalid iam instance profile")
        || (m.contains("instance profile") && m.contains("no associated iam roles"))
}
