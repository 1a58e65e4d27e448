//! The worker image: the Dockerfile's contract (always), and when a Docker engine answers, a
//! real CPU build by step-210, the engine's self-test inside the container with no network
//! (the model is baked in, case C32), and step-211's push to a local registry.
//!
//! The build takes about 4 minutes cold on two cores (1.5 GB image), seconds when cached.

use std::path::Path;
use std::process::Command;

use common::Mark;
use common::settings::Env;
use step_210_build_worker_image::plan::{self, Choices};
use testkit::TestProject;

fn dockerfile() -> String {
    std::fs::read_to_string(testkit::workspace_root().join("docker/worker/Dockerfile"))
        .expect("Dockerfile")
}

fn local_settings(name: &str) -> TestProject {
    TestProject::with_env(&format!(
        "AWS_REGION=us-east-2\nAWS_ENDPOINT_URL=http://127.0.0.1:9\nPROJECT_NAME={name}\nENVIRONMENT=test\n\
         AUDIO_BUCKET={name}-audio\nWHISPER_ENGINE=faster-whisper\nWHISPER_MODEL=bundled:tiny.en\n\
         COMPUTE_TYPE=int8\n"
    ))
}

#[test]
fn dockerfile_declares_every_build_arg_the_step_passes_and_keeps_its_promises() {
    let text = dockerfile();
    let declared: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("ARG "))
        .map(|a| a.split('=').next().unwrap_or(a).trim())
        .collect();
    let project = local_settings("lint");
    for copies in [true, false] {
        let choices = Choices { compile: !copies, ..Choices::default() };
        let plan = plan::plan(&project.settings(), &choices);
        assert_eq!(plan.copies_binary(), copies);
        for (key, _) in plan.build_args("1.0.0", "abc") {
            assert!(
                declared.contains(&key.as_str()),
                "build arg {key} is not declared in the Dockerfile"
            );
        }
    }
    let stages: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(stages.len(), 4, "builder, os, engine, runtime: {stages:?}");
    assert!(stages[3].ends_with("AS runtime"), "the runtime stage must be last");
    assert!(text.contains("ARG BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"));
    for promise in [
        "HF_HUB_OFFLINE=1",
        "TRANSFORMERS_OFFLINE=1",
        "USER worker",
        "HEALTHCHECK ",
        "org.opencontainers.image.revision",
    ] {
        assert!(text.contains(promise), "the Dockerfile lost `{promise}`");
    }
    assert!(
        !text.lines().any(|l| l.starts_with("# syntax=")),
        "a syntax line would pull a frontend image"
    );
}

#[test]
fn local_mode_plans_a_cpu_image_from_the_local_base_and_aws_mode_a_cuda_one() {
    let local = plan::plan(&local_settings("plan").settings(), &Choices::default());
    assert_eq!(local.base_image, plan::LOCAL_BASE_IMAGE);
    assert_eq!(local.builder_image, plan::LOCAL_BASE_IMAGE);
    assert_eq!(
        (local.engine.as_str(), local.model.as_str()),
        ("faster-whisper", "bundled:tiny.en")
    );
    assert!(local.build_on_host && local.host_wheels);

    let cloud = TestProject::with_env("AWS_REGION=us-east-2\nAUDIO_BUCKET=b-audio-x\n");
    let cloud = plan::plan(&cloud.settings(), &Choices::default());
    assert_eq!(cloud.base_image, plan::GPU_BASE_IMAGE);
    assert_eq!(cloud.builder_image, plan::RUST_IMAGE);
    assert_eq!((cloud.engine.as_str(), cloud.model.as_str()), ("whisperx", "large-v3"));
    assert!(!cloud.copies_binary() && !cloud.host_wheels);
}

fn engine_reachable() -> Result<(), String> {
    let out = Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]).output();
    match out {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Err(e) => Err(format!("cannot run docker: {e}")),
    }
}

fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker").args(args).output().expect("run docker");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Removes the image names the test made, and stops its registry.
struct Cleanup {
    names: Vec<String>,
    registry: Option<common::registry::LocalRegistry>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("docker").args(["image", "rm", name]).output();
        }
        if let Some(registry) = &self.registry {
            let _ = registry.stop();
        }
    }
}

#[tokio::test]
async fn cpu_image_builds_runs_its_engine_offline_and_pushes_to_the_local_registry() {
    if let Err(reason) = engine_reachable() {
        eprintln!(
            "SKIPPED the image build: no Docker engine answers ({reason}); the Dockerfile lint still ran"
        );
        return;
    }
    let project = local_settings("imgtest");
    let repo = "imgtest-test-worker";
    let port = testkit::free_port().to_string();
    let env = Env::from([("FLEET_REGISTRY_PORT".to_string(), port.clone())]);
    let registry =
        common::registry::LocalRegistry::for_project(&project.project(), &env).expect("registry");
    let mut cleanup = Cleanup { names: vec![format!("{repo}:latest")], registry: Some(registry) };

    let mut ctx = testkit::context(step_210_build_worker_image::NAME, &project, Default::default());
    ctx.env.extend(env.clone());
    let args = step_210_build_worker_image::Args {
        source_dir: Some(testkit::workspace_root()),
        ..Default::default()
    };
    let report =
        step_210_build_worker_image::run(ctx, args).await.expect("step-210 builds the image");
    let tag = report.data["tag"].as_str().expect("tag").to_string();
    cleanup.names.push(format!("{repo}:{tag}"));
    eprintln!("{}", report.to_text());
    assert!(project.env_text().contains(&format!("WORKER_IMAGE_TAG={tag}")));
    assert!(report.data["size_bytes"].as_u64().is_some_and(|s| s > 100_000_000));
    let labels = &report.data["labels"];
    assert_eq!(labels["org.opencontainers.image.version"], env!("CARGO_PKG_VERSION"));
    assert!(
        tag.starts_with(labels["org.opencontainers.image.revision"].as_str().expect("revision"))
    );
    let recorded = common::measurements::load(&project.project()).expect("measurements");
    assert!(recorded.contains_key(common::measurements::PATH_B_IMAGE_SIZE));

    let image = format!("{repo}:{tag}");
    let (ok, version) = docker(&["run", "--rm", "--network", "none", &image, "--version"]);
    assert!(ok && version.contains(env!("CARGO_PKG_VERSION")), "{version}");
    let self_test = [
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/opt/venv/bin/python",
        &image,
        "/opt/engine/whisper_engine.py",
        "--backend",
        "faster-whisper",
        "--model",
        "bundled:tiny.en",
        "--device",
        "cpu",
        "--compute-type",
        "int8",
        "--self-test",
    ];
    let (ok, output) = docker(&self_test);
    assert!(ok && output.contains(r#""event":"self_test","ok":true"#), "{output}");
    let (_, user) = docker(&["image", "inspect", "--format", "{{.Config.User}}", &image]);
    assert_eq!(user.trim(), "worker");

    let mut ctx = testkit::context("step-211-push-to-ecr", &project, Default::default());
    ctx.env.extend(env);
    let pushed = step_211_push_to_ecr::run(ctx, Default::default()).await.expect("step-211 pushes");
    let pushed_ref = format!("127.0.0.1:{port}/{repo}:{tag}");
    cleanup.names.push(pushed_ref);
    assert_eq!(pushed.count(Mark::Problem), 0, "{}", pushed.to_text());
    let digest = pushed.data["digest"].as_str().expect("digest");
    assert!(project.env_text().contains(&format!("WORKER_IMAGE_DIGEST={digest}")));
    assert!(project.env_text().contains(&format!("WORKER_IMAGE=127.0.0.1:{port}/{repo}@{digest}")));
    assert!(Path::new(&project.root().join(".local/registry/data")).exists());
}
