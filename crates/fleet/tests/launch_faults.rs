//! Launch errors the emulator never produces (C22 capacity, C23 quotas, C25 IAM propagation),
//! injected with aws-smithy-mocks against the real launch code.

use std::sync::{Arc, Mutex};

use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use common::ui::Ui;
use fleet::ec2;
use fleet::ec2::error::ErrorMetadata;
use fleet::ec2::operation::describe_instance_types::{
    DescribeInstanceTypesError, DescribeInstanceTypesOutput,
};
use fleet::ec2::operation::run_instances::{RunInstancesError, RunInstancesOutput};
use fleet::launch::{LaunchError, LaunchPlan, Market, Pacing, launch_one, launch_workers};
use fleet::network::Subnet;
use fleet::template::Template;

fn client(rules: &[&Rule]) -> ec2::Client {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    let config = ec2::Config::builder()
        .behavior_version(ec2::config::BehaviorVersion::latest())
        .region(ec2::config::Region::new("us-east-2"))
        .credentials_provider(ec2::config::Credentials::new("id", "secret", None, None, "test"))
        .retry_config(ec2::config::retry::RetryConfig::disabled())
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .build();
    ec2::Client::from_conf(config)
}

fn plan(types: &[&str], allow_on_demand: bool) -> LaunchPlan {
    let subnet =
        |id: &str, zone: &str| Subnet { id: id.into(), zone: zone.into(), vpc_id: "vpc-1".into() };
    LaunchPlan {
        template: Template { id: "lt-1".into(), version: 1 },
        instance_types: types.iter().map(|t| t.to_string()).collect(),
        subnets: vec![subnet("subnet-a", "us-east-2a"), subnet("subnet-b", "us-east-2b")],
        allow_on_demand,
        tags: vec![("Role".into(), "worker".into())],
    }
}

fn error(code: &str, message: &str) -> RunInstancesError {
    RunInstancesError::generic(ErrorMetadata::builder().code(code).message(message).build())
}

fn instance(id: &str) -> RunInstancesOutput {
    RunInstancesOutput::builder()
        .instances(ec2::types::Instance::builder().instance_id(id).build())
        .build()
}

/// What each RunInstances call asked for: `market type zone`.
type Calls = Arc<Mutex<Vec<String>>>;

fn recorded(calls: &Calls) -> Vec<String> {
    calls.lock().expect("calls").clone()
}

/// A RunInstances rule answering `answer(market, type, subnet)` and recording every call.
fn run_rule(
    calls: &Calls,
    answer: impl Fn(&str, &str, &str) -> Result<RunInstancesOutput, RunInstancesError>
    + Send
    + Sync
    + 'static,
) -> Rule {
    let calls = calls.clone();
    mock!(ec2::Client::run_instances).then_compute_response(move |req| {
        let market = if req.instance_market_options().is_some() { "spot" } else { "on-demand" };
        let itype = req.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default();
        let subnet = req.subnet_id().unwrap_or_default().to_string();
        calls.lock().expect("calls").push(format!("{market} {itype} {subnet}"));
        match answer(market, &itype, &subnet) {
            Ok(out) => aws_smithy_mocks::MockResponse::Output(out),
            Err(e) => aws_smithy_mocks::MockResponse::Error(e),
        }
    })
}

const ICE: &str = "We currently do not have sufficient g5.xlarge capacity in the Availability \
    Zone you requested (us-east-2a). Our system will be working on provisioning additional \
    capacity. You can currently get g5.xlarge capacity by not specifying an Availability Zone.";

#[tokio::test]
async fn c22_capacity_error_moves_to_the_next_zone_then_the_next_type() {
    let calls = Calls::default();
    let rule = run_rule(&calls, |_, itype, subnet| match (itype, subnet) {
        ("g4dn.xlarge", "subnet-b") => Ok(instance("i-0b")),
        _ => Err(error("InsufficientInstanceCapacity", ICE)),
    });
    let ec2 = client(&[&rule]);
    let worker = launch_one(
        &ec2,
        &plan(&["g5.xlarge", "g4dn.xlarge"], false),
        "w-1",
        1,
        &Pacing::immediate(),
        &Ui::silent(),
    )
    .await
    .expect("a worker after moving on");
    assert_eq!(worker.instance_id, "i-0b");
    assert_eq!(
        (worker.instance_type.as_str(), worker.zone.as_str()),
        ("g4dn.xlarge", "us-east-2b")
    );
    assert_eq!(worker.market, Market::Spot);
    assert_eq!(
        recorded(&calls),
        [
            "spot g5.xlarge subnet-a",
            "spot g5.xlarge subnet-b",
            "spot g4dn.xlarge subnet-a",
            "spot g4dn.xlarge subnet-b"
        ]
    );
}

#[tokio::test]
async fn c22_no_spot_capacity_anywhere_falls_back_to_on_demand_when_allowed() {
    let calls = Calls::default();
    let rule = run_rule(&calls, |market, _, _| match market {
        "on-demand" => Ok(instance("i-od")),
        _ => Err(error("InsufficientInstanceCapacity", ICE)),
    });
    let ec2 = client(&[&rule]);
    let worker = launch_one(
        &ec2,
        &plan(&["g5.xlarge"], true),
        "w-1",
        1,
        &Pacing::immediate(),
        &Ui::silent(),
    )
    .await
    .expect("on-demand worker");
    assert_eq!(worker.market, Market::OnDemand);
    assert_eq!(recorded(&calls).len(), 3, "{:?}", recorded(&calls));
}

#[tokio::test]
async fn c22_no_capacity_without_on_demand_lists_every_attempt_and_is_not_a_config_error() {
    let calls = Calls::default();
    let rule = run_rule(&calls, |_, _, _| Err(error("InsufficientInstanceCapacity", ICE)));
    let ec2 = client(&[&rule]);
    let failure = launch_one(
        &ec2,
        &plan(&["g5.xlarge", "g6.xlarge"], false),
        "w-1",
        1,
        &Pacing::immediate(),
        &Ui::silent(),
    )
    .await
    .expect_err("no capacity");
    let LaunchError::NoCapacity(attempts) = &failure else { panic!("{failure}") };
    assert_eq!(attempts.len(), 4);
    let text = failure.to_string();
    for part in ["g5.xlarge in us-east-2a", "g5.xlarge in us-east-2b", "g6.xlarge in us-east-2b"] {
        assert!(text.contains(part), "{part} missing from {text}");
    }
    let error = failure.into_anyhow("us-east-2");
    assert_eq!(common::cli::exit_code_for(&error), 1);
    assert!(common::cli::render_error(&error).contains("ALLOW_ON_DEMAND=true"));
}

#[tokio::test]
async fn c23_vcpu_limit_stops_at_once_with_vcpus_needed_and_the_quota_to_raise() {
    let calls = Calls::default();
    let rule = run_rule(&calls, |_, _, _| {
        Err(error(
            "VcpuLimitExceeded",
            "You have requested more vCPU capacity than your current vCPU limit of 0 allows",
        ))
    });
    let types = mock!(ec2::Client::describe_instance_types).then_output(|| {
        DescribeInstanceTypesOutput::builder()
            .instance_types(
                ec2::types::InstanceTypeInfo::builder()
                    .v_cpu_info(ec2::types::VCpuInfo::builder().default_v_cpus(8).build())
                    .build(),
            )
            .build()
    });
    let ec2 = client(&[&rule, &types]);
    let failure = launch_one(
        &ec2,
        &plan(&["g5.2xlarge", "g4dn.xlarge"], true),
        "w-1",
        3,
        &Pacing::immediate(),
        &Ui::silent(),
    )
    .await
    .expect_err("quota");
    assert_eq!(recorded(&calls).len(), 1, "a quota error is not retried elsewhere");
    let text = failure.to_string();
    assert!(text.contains("3 worker(s) × 8 vCPUs need 24 vCPUs"), "{text}");
    assert!(text.contains("All G and VT Spot Instance Requests"), "{text}");
    let hint = common::cli::render_error(&failure.into_anyhow("us-east-2"));
    assert!(hint.contains("--quota-code L-3819A6DF --desired-value 24"), "{hint}");
}

#[tokio::test]
async fn c23_max_spot_count_for_p_instances_names_the_p_quota_from_the_table() {
    let calls = Calls::default();
    let rule = run_rule(&calls, |_, _, _| {
        Err(error("MaxSpotInstanceCountExceeded", "Max spot instance count exceeded"))
    });
    let types = mock!(ec2::Client::describe_instance_types).then_error(|| {
        DescribeInstanceTypesError::generic(
            ErrorMetadata::builder().code("UnauthorizedOperation").build(),
        )
    });
    let ec2 = client(&[&rule, &types]);
    let failure = launch_one(
        &ec2,
        &plan(&["p3.2xlarge"], false),
        "w-1",
        2,
        &Pacing::immediate(),
        &Ui::silent(),
    )
    .await
    .expect_err("quota");
    let text = failure.to_string();
    assert!(text.contains("16 vCPUs") && text.contains("L-7212CCBC"), "{text}");
}

const PROFILE_NOT_YET: &str = "Value (demo-dev-worker-profile) for parameter \
    iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name";

#[tokio::test]
async fn c25_new_instance_profile_is_retried_until_iam_propagates() {
    let calls = Calls::default();
    let count = Arc::new(Mutex::new(0));
    let seen = count.clone();
    let rule = run_rule(&calls, move |_, _, _| {
        let mut n = seen.lock().expect("count");
        *n += 1;
        if *n <= 2 {
            Err(error("InvalidParameterValue", PROFILE_NOT_YET))
        } else {
            Ok(instance("i-iam"))
        }
    });
    let ec2 = client(&[&rule]);
    let worker = launch_one(
        &ec2,
        &plan(&["g5.xlarge"], false),
        "w-1",
        1,
        &Pacing::immediate(),
        &Ui::silent(),
    )
    .await
    .expect("worker once IAM caught up");
    assert_eq!(worker.instance_id, "i-iam");
    assert_eq!(recorded(&calls), ["spot g5.xlarge subnet-a"; 3], "same candidate retried");
}

#[tokio::test]
async fn c25_profile_still_rejected_after_the_time_budget_names_the_profile() {
    let calls = Calls::default();
    let rule = run_rule(&calls, |_, _, _| Err(error("InvalidParameterValue", PROFILE_NOT_YET)));
    let ec2 = client(&[&rule]);
    let failure = launch_one(
        &ec2,
        &plan(&["g5.xlarge"], false),
        "w-1",
        1,
        &Pacing::immediate(),
        &Ui::silent(),
    )
    .await
    .expect_err("gave up");
    let LaunchError::IamPropagation { ref profile, .. } = failure else { panic!("{failure}") };
    assert_eq!(profile, "demo-dev-worker-profile");
    assert!(recorded(&calls).len() > 2);
}

#[tokio::test]
async fn c25_other_invalid_parameter_values_fail_fast() {
    let calls = Calls::default();
    let rule = run_rule(&calls, |_, _, _| {
        Err(error("InvalidParameterValue", "Value (banana) for parameter instanceType is invalid."))
    });
    let ec2 = client(&[&rule]);
    let failure = launch_one(
        &ec2,
        &plan(&["g5.xlarge", "g4dn.xlarge"], true),
        "w-1",
        1,
        &Pacing::immediate(),
        &Ui::silent(),
    )
    .await
    .expect_err("fatal");
    assert!(matches!(failure, LaunchError::Refused { .. }), "{failure}");
    assert_eq!(recorded(&calls).len(), 1);
}

#[tokio::test]
async fn a_failure_after_some_launches_keeps_the_launched_workers() {
    let calls = Calls::default();
    let count = Arc::new(Mutex::new(0));
    let seen = count.clone();
    let rule = run_rule(&calls, move |_, _, _| {
        let mut n = seen.lock().expect("count");
        *n += 1;
        if *n == 1 { Ok(instance("i-first")) } else { Err(error("VcpuLimitExceeded", "limit")) }
    });
    let types = mock!(ec2::Client::describe_instance_types).then_error(|| {
        DescribeInstanceTypesError::generic(
            ErrorMetadata::builder().code("UnauthorizedOperation").build(),
        )
    });
    let ec2 = client(&[&rule, &types]);
    let names = vec!["w-1".to_string(), "w-2".to_string()];
    let (launched, error) = launch_workers(
        &ec2,
        &plan(&["g5.xlarge"], false),
        &names,
        2,
        &Pacing::immediate(),
        &Ui::silent(),
    )
    .await;
    assert_eq!(launched.len(), 1);
    assert_eq!(launched[0].name, "w-1");
    assert!(matches!(error, Some(LaunchError::Quota(_))));
}

#[test]
fn only_the_instance_profile_messages_count_as_iam_propagation() {
    use fleet::launch::{ErrorClass, classify};
    assert_eq!(classify("InvalidParameterValue", PROFILE_NOT_YET), ErrorClass::IamPropagation);
    let arn = "Value (arn:aws:iam::123456789012:instance-profile/x) for parameter \
        iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN";
    assert_eq!(classify("InvalidParameterValue", arn), ErrorClass::IamPropagation);
    let no_roles = "The instance profile x has no associated IAM Roles";
    assert_eq!(classify("InvalidParameterValue", no_roles), ErrorClass::IamPropagation);
    assert_eq!(classify("InvalidParameterValue", "Invalid value for userData"), ErrorClass::Fatal);
    assert_eq!(classify("InsufficientInstanceCapacity", ICE), ErrorClass::Capacity);
    assert_eq!(classify("VcpuLimitExceeded", ""), ErrorClass::Quota);
    assert_eq!(
        classify("UnauthorizedOperation", "iamInstanceProfile.name invalid"),
        ErrorClass::Fatal
    );
}
