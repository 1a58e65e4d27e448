//! Path B user data: rendered from real settings, valid bash, no secret, the image by digest.

use fleet::docker_path::{self, PinnedImage};
use testkit::TestProject;

#[test]
fn path_b_user_data_is_valid_bash_pins_the_digest_and_carries_no_secret() {
    let project = TestProject::with_env(
        "AWS_REGION=us-east-2\nPROJECT_NAME=demo\nENVIRONMENT=prod\nAUDIO_BUCKET=demo-prod-audio\n\
         QUEUE_URL=https://sqs.us-east-2.amazonaws.com/123456789012/demo-prod-jobs\n\
         HF_TOKEN=hf_secretsecretsecret\n",
    );
    let reference = format!(
        "123456789012.dkr.ecr.us-east-2.amazonaws.com/demo-prod-worker@sha256:{}",
        "c".repeat(64)
    );
    let image = PinnedImage::parse(&reference).expect("pinned");
    let text = docker_path::user_data(&project.settings(), &image, 9_000_000_000).expect("render");
    assert!(text.len() < fleet::userdata::USER_DATA_LIMIT / 2, "{} bytes", text.len());
    assert!(text.contains(&format!("image='{reference}'")));
    assert!(text.contains("registry='123456789012.dkr.ecr.us-east-2.amazonaws.com'"));
    assert!(text.contains("FLEET_DEPLOYMENT_PATH='docker'"));
    assert!(text.contains("--label fleet.project=demo --label fleet.environment=prod"));
    assert!(!text.contains("hf_secret"), "the token must not be in user data");
    assert!(!text.contains("{{"), "every placeholder filled");
    let file = project.root().join("user-data.sh");
    std::fs::write(&file, &text).expect("write");
    let status = std::process::Command::new("bash").arg("-n").arg(&file).status().expect("bash");
    assert!(status.success());
}
