//! Steps 100 and 101 against a private emulator whose AMI catalogue holds Deep Learning AMI
//! look-alikes (`crates/testkit/fixtures/amis.json`).

use common::ui::Scripted;
use common::{Mark, Status};
use step_100_setup_ec2_configuration::{Args, STEP, run};
use testkit::{Emulator, TestProject};

const NEWEST_DLAMI: &str = "ami-0f9e8d7c6b5a40312";

fn validate(project: &TestProject) -> common::Context {
    testkit::context("step-101-validate-ec2-configuration", project, Scripted::default())
}

#[tokio::test]
async fn finds_the_newest_dlami_and_network_then_a_second_run_changes_nothing() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "ec2");
    let first = run(testkit::context(STEP, &project, Scripted::default()), Args::default())
        .await
        .expect("step-100");
    assert_eq!(first.status, Status::Ok, "{}", first.to_text());
    let settings = project.settings();
    assert_eq!(
        settings.ec2.ami_id.as_deref(),
        Some(NEWEST_DLAMI),
        "SSM parameter missing in moto: found by name, newest first"
    );
    assert!(settings.ec2.vpc_id.is_some() && settings.ec2.security_group_id.is_some());
    assert!(
        settings.ec2.subnet_ids.len() >= 2,
        "one subnet per zone: {:?}",
        settings.ec2.subnet_ids
    );
    let env_before = project.env_text();

    let second = run(testkit::context(STEP, &project, Scripted::default()), Args::default())
        .await
        .expect("step-100 again");
    assert!(!second.changed_anything(), "{}", second.to_text());
    assert_eq!(project.env_text(), env_before);

    let checked = step_101_validate_ec2_configuration::run(validate(&project), Default::default())
        .await
        .expect("step-101");
    assert_eq!(checked.status, Status::Ok, "{}", checked.to_text());
    assert!(checked.items.iter().any(|i| i.label == "user data" && i.mark == Mark::Passed));
}

#[tokio::test]
async fn c26_ami_id_from_another_region_fails_validation_and_step_100_replaces_it() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "c26");
    run(testkit::context(STEP, &project, Scripted::default()), Args::default())
        .await
        .expect("step-100");
    let env = project.root().join(".env");
    common::dotenv::update(&env, &[("AMI_ID", "ami-0123456789abcdef0")]).expect("foreign AMI");

    let checked = step_101_validate_ec2_configuration::run(validate(&project), Default::default())
        .await
        .expect("step-101");
    assert_eq!(checked.status, Status::Failed);
    let problem = checked.items.iter().find(|i| i.mark == Mark::Problem).expect("a problem");
    assert!(problem.detail.contains("does not exist in us-east-2"), "{}", problem.detail);

    run(testkit::context(STEP, &project, Scripted::default()), Args::default())
        .await
        .expect("repair");
    assert_eq!(project.settings().ec2.ami_id.as_deref(), Some(NEWEST_DLAMI));
}

#[tokio::test]
async fn ssh_is_opened_only_to_the_given_cidr_and_closed_again_without_it() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "ssh");
    let args = Args { ssh_cidr: Some("203.0.113.7/32".into()), key_pair: true };
    let report =
        run(testkit::context(STEP, &project, Scripted::default()), args).await.expect("step-100");
    assert!(report.to_text().contains("SSH from 203.0.113.7/32 only"), "{}", report.to_text());
    let settings = project.settings();
    let key = settings.ec2.key_name.clone().expect("KEY_NAME written");
    let pem = project.root().join(format!("{key}.pem"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&pem).expect("private key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let config = testkit::sdk_config(&settings).await;
    let ec2 = fleet::ec2::Client::new(&config);
    let group_id = settings.ec2.security_group_id.clone().expect("group");
    let group = fleet::network::describe_security_group(&ec2, &group_id)
        .await
        .expect("describe")
        .expect("group");
    assert_eq!(group.inbound, ["tcp:22-22:203.0.113.7/32"]);

    common::dotenv::update(&project.root().join(".env"), &[("SSH_CIDR", "")]).expect("no SSH");
    let closed = run(testkit::context(STEP, &project, Scripted::default()), Args::default())
        .await
        .expect("again");
    assert!(closed.items.iter().any(|i| i.label == "security group" && i.mark == Mark::Updated));
    let group = fleet::network::describe_security_group(&ec2, &group_id)
        .await
        .expect("describe")
        .expect("group");
    assert!(group.inbound.is_empty(), "{:?}", group.inbound);
}
