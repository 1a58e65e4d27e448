//! Launch template, workers by tag and the local runner's guard, against a private emulator.

use common::Mark;
use fleet::template::{TemplateSpec, default_data, ensure_template};
use testkit::{Emulator, TestProject};

fn spec(user_data: &str) -> TemplateSpec {
    TemplateSpec {
        name: "demo-test-worker-traditional".into(),
        ami_id: "ami-0f9e8d7c6b5a40312".into(),
        root_device: "/dev/sda1".into(),
        root_volume_gb: 100,
        security_group_id: "sg-12345678".into(),
        key_name: None,
        instance_profile: "demo-test-worker-profile".into(),
        user_data: user_data.into(),
        tags: vec![
            ("Role".into(), "worker".into()),
            ("DeploymentPath".into(), "traditional".into()),
        ],
    }
}

#[tokio::test]
async fn launch_template_requires_imdsv2_encrypts_gp3_terminates_and_versions_changes() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "lt");
    let config = testkit::sdk_config(&project.settings()).await;
    let ec2 = fleet::ec2::Client::new(&config);

    let (template, mark) =
        ensure_template(&ec2, &spec("#!/bin/bash\necho one\n")).await.expect("create");
    assert_eq!(mark, Mark::Created);
    let data = default_data(&ec2, &template).await.expect("read").expect("data");
    let metadata = data.metadata_options().expect("metadata options");
    assert_eq!(metadata.http_tokens().map(|t| t.as_str()), Some("required"));
    assert_eq!(metadata.http_put_response_hop_limit(), Some(2));
    let ebs = data.block_device_mappings()[0].ebs().expect("root volume");
    assert_eq!((ebs.encrypted(), ebs.volume_size()), (Some(true), Some(100)));
    assert_eq!(ebs.volume_type().map(|t| t.as_str()), Some("gp3"));
    assert_eq!(data.instance_initiated_shutdown_behavior().map(|b| b.as_str()), Some("terminate"));
    assert_eq!(
        data.iam_instance_profile().and_then(|p| p.name()),
        Some("demo-test-worker-profile")
    );

    let (same, mark) =
        ensure_template(&ec2, &spec("#!/bin/bash\necho one\n")).await.expect("again");
    assert_eq!((mark, same.version), (Mark::Unchanged, template.version));
    let (changed, mark) =
        ensure_template(&ec2, &spec("#!/bin/bash\necho two\n")).await.expect("change");
    assert_eq!(mark, Mark::Updated);
    assert_eq!(changed.version, template.version + 1);
}

#[tokio::test]
async fn the_local_runner_refuses_settings_that_are_not_local() {
    let project = TestProject::with_env(
        "AWS_REGION=us-east-2\nPROJECT_NAME=demo\nENVIRONMENT=prod\nAUDIO_BUCKET=demo-prod-audio\n",
    );
    let settings = project.settings();
    assert!(!settings.is_local());
    let config = testkit::sdk_config(&settings).await;
    let s3 = common::aws::s3_client(&config, &settings);
    let error = fleet::local::start(&project.project(), &settings, &Default::default(), &s3, "i-1")
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("only runs against a local emulator"), "{error}");
    assert!(fleet::local::list(&project.project()).is_empty());
}

#[test]
fn path_a_user_data_is_valid_bash_well_under_16_kb_and_carries_no_secret() {
    let project = TestProject::with_env(
        "AWS_REGION=us-east-2\nPROJECT_NAME=demo\nENVIRONMENT=prod\nAUDIO_BUCKET=demo-prod-audio\n\
         QUEUE_URL=https://sqs.us-east-2.amazonaws.com/123456789012/demo-prod-jobs\n\
         HF_TOKEN=hf_secretsecretsecret\n",
    );
    let text = fleet::traditional::user_data(&project.settings()).expect("user data");
    assert!(text.len() < fleet::userdata::USER_DATA_LIMIT / 2, "{} bytes", text.len());
    assert!(
        text.contains(
            "QUEUE_URL='https://sqs.us-east-2.amazonaws.com/123456789012/demo-prod-jobs'"
        )
    );
    assert!(!text.contains("hf_secret"), "the token must not be in user data");
    assert!(!text.contains("{{"), "every placeholder filled");
    let file = project.root().join("user-data.sh");
    std::fs::write(&file, &text).expect("write");
    let status = std::process::Command::new("bash").arg("-n").arg(&file).status().expect("bash");
    assert!(status.success());
}
