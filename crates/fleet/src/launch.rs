//! Placing workers: spot across instance types × subnets, with the fallbacks real accounts need.
//!
//! - InsufficientInstanceCapacity (and its relatives) is never a configuration error: the next
//!   subnet, then the next instance type is tried after a short jittered pause; with
//!   `ALLOW_ON_DEMAND=true` the same list is tried on-demand; the final error lists every
//!   attempt (C22).
//! - Quota errors (VcpuLimitExceeded, MaxSpotInstanceCountExceeded, ...) stop at once with the
//!   quota family, the vCPUs needed and how to raise it (C23).
//! - A just-made instance profile is rejected with InvalidParameterValue for a while; exactly
//!   those messages are retried with exponential backoff within a bounded time (C25). Any other
//!   InvalidParameterValue fails at once.

use std::time::{Duration, Instant};

use common::aws::describe;
use common::ui::Ui;

use crate::ec2;
use crate::ec2::types::{
    InstanceInterruptionBehavior, InstanceMarketOptionsRequest, LaunchTemplateSpecification,
    MarketType, ResourceType, SpotInstanceType, SpotMarketOptions,
};
use crate::network::Subnet;
use crate::template::Template;

mod error;

pub use error::{
    Attempt, CAPACITY_CODES, ErrorClass, LaunchError, QUOTA_CODES, QuotaProblem, classify,
    is_profile_propagation,
};

/// Spot or on-demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Market {
    /// Spot capacity.
    Spot,
    /// On-demand capacity.
    OnDemand,
}

impl Market {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spot => "spot",
            Self::OnDemand => "on-demand",
        }
    }
}

/// What to launch.
#[derive(Debug, Clone)]
pub struct LaunchPlan {
    /// The launch template and version.
    pub template: Template,
    /// Instance types, primary first.
    pub instance_types: Vec<String>,
    /// Subnets, one per zone.
    pub subnets: Vec<Subnet>,
    /// Whether to try on-demand after spot.
    pub allow_on_demand: bool,
    /// Tags of each instance and its volume (the name tag is added per worker).
    pub tags: Vec<(String, String)>,
}

/// Waits between attempts; tests make them short.
#[derive(Debug, Clone)]
pub struct Pacing {
    /// First wait while IAM propagates; doubled each time.
    pub iam_first_wait: Duration,
    /// Longest single wait while IAM propagates.
    pub iam_max_wait: Duration,
    /// Total time to wait for IAM before giving up.
    pub iam_budget: Duration,
    /// Pause after a capacity error, before the next candidate (plus up to 50 % jitter).
    pub capacity_pause: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            iam_first_wait: Duration::from_secs(2),
            iam_max_wait: Duration::from_secs(20),
            iam_budget: Duration::from_secs(180),
            capacity_pause: Duration::from_millis(500),
        }
    }
}

impl Pacing {
    /// No waiting at all, for tests.
    pub fn immediate() -> Self {
        Self {
            iam_first_wait: Duration::from_millis(1),
            iam_max_wait: Duration::from_millis(4),
            iam_budget: Duration::from_millis(200),
            capacity_pause: Duration::ZERO,
        }
    }
}

/// One launched worker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Launched {
    /// Instance id.
    pub instance_id: String,
    /// Its type.
    pub instance_type: String,
    /// Its subnet.
    pub subnet_id: String,
    /// Its zone.
    pub zone: String,
    /// Spot or on-demand.
    pub market: Market,
    /// Its name tag.
    pub name: String,
}

/// Launches `count` workers one at a time, naming them `names`; returns those launched and,
/// if one failed, why (the rest are not tried).
pub async fn launch_workers(
    ec2: &ec2::Client,
    plan: &LaunchPlan,
    names: &[String],
    workers_wanted: u32,
    pacing: &Pacing,
    ui: &Ui,
) -> (Vec<Launched>, Option<LaunchError>) {
    let mut launched = Vec::new();
    for name in names {
        match launch_one(ec2, plan, name, workers_wanted, pacing, ui).await {
            Ok(worker) => launched.push(worker),
            Err(e) => return (launched, Some(e)),
        }
    }
    (launched, None)
}

/// Launches one worker named `name`, trying every candidate as described in the module docs.
pub async fn launch_one(
    ec2: &ec2::Client,
    plan: &LaunchPlan,
    name: &str,
    workers_wanted: u32,
    pacing: &Pacing,
    ui: &Ui,
) -> Result<Launched, LaunchError> {
    if plan.instance_types.is_empty() || plan.subnets.is_empty() {
        return Err(LaunchError::NothingToTry);
    }
    let mut markets = vec![Market::Spot];
    if plan.allow_on_demand {
        markets.push(Market::OnDemand);
    }
    let mut attempts = Vec::new();
    let started = Instant::now();
    for market in markets {
        for instance_type in &plan.instance_types {
            for subnet in &plan.subnets {
                let candidate = Candidate { market, instance_type, subnet };
                match try_candidate(ec2, plan, name, &candidate, pacing, started, ui).await {
                    Ok(worker) => return Ok(worker),
                    Err(Failure::Capacity(outcome)) => {
                        ui.note(&format!(
                            "no {} capacity for {instance_type} in {}; trying the next",
                            market.as_str(),
                            subnet.zone
                        ));
                        attempts.push(candidate.attempt(outcome));
                        pause(pacing.capacity_pause).await;
                    }
                    Err(Failure::Quota { code, message }) => {
                        let vcpus_per_instance = vcpus_of(ec2, instance_type).await;
                        return Err(LaunchError::Quota(QuotaProblem {
                            code,
                            message,
                            instance_type: instance_type.clone(),
                            market,
                            vcpus_per_instance,
                            workers_wanted,
                        }));
                    }
                    Err(Failure::Stop(error)) => return Err(error),
                }
            }
        }
    }
    Err(LaunchError::NoCapacity(attempts))
}

struct Candidate<'a> {
    market: Market,
    instance_type: &'a str,
    subnet: &'a Subnet,
}

impl Candidate<'_> {
    fn attempt(&self, outcome: String) -> Attempt {
        Attempt {
            instance_type: self.instance_type.to_string(),
            zone: self.subnet.zone.clone(),
            market: self.market,
            outcome,
        }
    }
}

enum Failure {
    Capacity(String),
    Quota { code: String, message: String },
    Stop(LaunchError),
}

async fn try_candidate(
    ec2: &ec2::Client,
    plan: &LaunchPlan,
    name: &str,
    candidate: &Candidate<'_>,
    pacing: &Pacing,
    started: Instant,
    ui: &Ui,
) -> Result<Launched, Failure> {
    let mut wait = pacing.iam_first_wait;
    loop {
        let result = run_instance(ec2, plan, name, candidate).await;
        let error = match result {
            Ok(id) => {
                return Ok(Launched {
                    instance_id: id,
                    instance_type: candidate.instance_type.to_string(),
                    subnet_id: candidate.subnet.id.clone(),
                    zone: candidate.subnet.zone.clone(),
                    market: candidate.market,
                    name: name.to_string(),
                });
            }
            Err(error) => error,
        };
        let code = common::aws::error_code(&error).unwrap_or_default().to_string();
        let message = error_message(&error);
        match classify(&code, &message) {
            ErrorClass::Capacity => return Err(Failure::Capacity(describe(&error))),
            ErrorClass::Quota => return Err(Failure::Quota { code, message }),
            ErrorClass::IamPropagation if started.elapsed() + wait <= pacing.iam_budget => {
                ui.note(&format!("waiting for IAM propagation of the instance profile ({wait:?})"));
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(pacing.iam_max_wait);
            }
            ErrorClass::IamPropagation => {
                return Err(Failure::Stop(LaunchError::IamPropagation {
                    profile: profile_in(&message),
                    waited: started.elapsed().as_secs_f64(),
                    message: describe(&error),
                }));
            }
            ErrorClass::Fatal => {
                return Err(Failure::Stop(LaunchError::Refused {
                    market: candidate.market.as_str(),
                    instance_type: candidate.instance_type.to_string(),
                    zone: candidate.subnet.zone.clone(),
                    message: describe(&error),
                }));
            }
        }
    }
}

type RunError = ec2::error::SdkError<
    ec2::operation::run_instances::RunInstancesError,
    ec2::config::http::HttpResponse,
>;

async fn run_instance(
    ec2: &ec2::Client,
    plan: &LaunchPlan,
    name: &str,
    candidate: &Candidate<'_>,
) -> Result<String, RunError> {
    let mut tags = plan.tags.clone();
    tags.push((crate::NAME_TAG.to_string(), name.to_string()));
    let template = LaunchTemplateSpecification::builder()
        .launch_template_id(&plan.template.id)
        .version(plan.template.version.to_string())
        .build();
    let mut request = ec2
        .run_instances()
        .launch_template(template)
        .instance_type(ec2::types::InstanceType::from(candidate.instance_type))
        .subnet_id(&candidate.subnet.id)
        .min_count(1)
        .max_count(1)
        .tag_specifications(crate::tag_spec(ResourceType::Instance, &tags))
        .tag_specifications(crate::tag_spec(ResourceType::Volume, &tags));
    if candidate.market == Market::Spot {
        let spot = SpotMarketOptions::builder()
            .spot_instance_type(SpotInstanceType::OneTime)
            .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
            .build();
        request = request.instance_market_options(
            InstanceMarketOptionsRequest::builder()
                .market_type(MarketType::Spot)
                .spot_options(spot)
                .build(),
        );
    }
    let out = request.send().await?;
    Ok(out.instances().first().and_then(|i| i.instance_id()).unwrap_or_default().to_string())
}

fn error_message(error: &RunError) -> String {
    use aws_smithy_types::error::metadata::ProvideErrorMetadata as _;
    match error {
        ec2::error::SdkError::ServiceError(s) => s.err().message().unwrap_or_default().to_string(),
        _ => String::new(),
    }
}

fn profile_in(message: &str) -> String {
    message
        .split_once("Value (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map_or_else(|| "worker profile".to_string(), |(value, _)| value.to_string())
}

async fn pause(base: Duration) {
    if base.is_zero() {
        return;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let jitter = base.mul_f64(f64::from(nanos % 500) / 1000.0);
    tokio::time::sleep(base + jitter).await;
}

/// vCPUs of one `instance_type`: from DescribeInstanceTypes, else a table of GPU types.
pub async fn vcpus_of(ec2: &ec2::Client, instance_type: &str) -> Option<u32> {
    let asked = ec2
        .describe_instance_types()
        .instance_types(ec2::types::InstanceType::from(instance_type))
        .send()
        .await;
    let found = asked.ok().and_then(|out| {
        out.instance_types()
            .first()
            .and_then(|t| t.v_cpu_info())
            .and_then(|v| v.default_v_cpus())
            .and_then(|v| u32::try_from(v).ok())
    });
    found.or_else(|| known_vcpus(instance_type))
}

/// vCPUs of common GPU instance types.
pub fn known_vcpus(instance_type: &str) -> Option<u32> {
    let size = instance_type.split_once('.')?.1;
    let vcpus = match size {
        "xlarge" => 4,
        "2xlarge" => 8,
        "4xlarge" => 16,
        "8xlarge" => 32,
        "12xlarge" => 48,
        "16xlarge" => 64,
        "24xlarge" => 96,
        "48xlarge" => 192,
        _ => return None,
    };
    Some(vcpus)
}
