//! Which image step 230 moves to, and what it refuses, without a Docker engine.

use common::ui::Scripted;
use step_230_update_docker_workers::{Args, STEP, run, target_image};
use testkit::{Emulator, TestProject};

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

#[tokio::test]
async fn rollback_without_a_previous_image_says_no_update_ran_and_changes_nothing() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "norollback");
    let env_file = project.root().join(".env");
    let current = format!("127.0.0.1:5050/w@{}", digest('a'));
    common::dotenv::update(&env_file, &[("WORKER_IMAGE", &current)]).expect("env");
    let before = std::fs::read_to_string(&env_file).expect("read");
    let args = Args { rollback: true, ..Args::default() };
    let error = run(testkit::context(STEP, &project, Scripted::default()), args)
        .await
        .expect_err("no previous image");
    let text = common::cli::render_error(&error);
    assert!(text.contains("WORKER_IMAGE_PREVIOUS is not in .env"), "{text}");
    assert!(text.contains("no update has run yet"), "{text}");
    assert_eq!(std::fs::read_to_string(&env_file).expect("read"), before);
}

#[tokio::test]
async fn rollback_targets_the_previous_digest_and_an_explicit_image_must_be_pinned() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "rollback");
    let env_file = project.root().join(".env");
    let current = format!("127.0.0.1:5050/w@{}", digest('a'));
    let previous = format!("127.0.0.1:5050/w@{}", digest('b'));
    common::dotenv::update(
        &env_file,
        &[("WORKER_IMAGE", &current), ("WORKER_IMAGE_PREVIOUS", &previous)],
    )
    .expect("env");
    let ctx = || testkit::context(STEP, &project, Scripted::default());
    let back = target_image(&ctx(), &Args { rollback: true, ..Args::default() }).expect("target");
    assert_eq!(back.digest, digest('b'));
    let forward = target_image(&ctx(), &Args::default()).expect("target");
    assert_eq!(forward.digest, digest('a'));
    let tag_only = Args { image: Some("127.0.0.1:5050/w:latest".into()), ..Args::default() };
    assert!(target_image(&ctx(), &tag_only).is_err());
}
