//! The shell scripts around the steps: `make demo` runs the bootstrap once.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A copy of the scripts the demo runs before its first step, in a folder of its own.
struct ScriptCopy {
    root: tempfile::TempDir,
    port: u16,
}

impl ScriptCopy {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("dir");
        let source = testkit::workspace_root();
        for file in [
            "scripts/demo-local.sh",
            "scripts/common/bootstrap.sh",
            "scripts/common/local-emulator.sh",
            "requirements-dev.txt",
            "engine/requirements-cpu.txt",
            "crates/testkit/fixtures/amis.json",
        ] {
            let target = root.path().join(file);
            std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
            std::fs::copy(source.join(file), &target).expect("copy");
        }
        Self { root, port: testkit::free_port() }
    }

    fn run(&self, script: &str, args: &[&str], env: &[(&str, &Path)]) -> Output {
        Command::new("bash")
            .arg(self.root.path().join(script))
            .args(args)
            .env("FLEET_VENV", venv())
            .env("FLEET_EMULATOR_PORT", self.port.to_string())
            .env_remove("FLEET_BOOTSTRAPPED")
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .output()
            .expect("run a script")
    }
}

impl Drop for ScriptCopy {
    fn drop(&mut self) {
        let _ = self.run("scripts/common/local-emulator.sh", &["down"], &[]);
    }
}

fn venv() -> PathBuf {
    testkit::venv_bin().parent().expect("venv").to_path_buf()
}

#[test]
fn demo_prints_bootstrap_ready_once() {
    let copy = ScriptCopy::new();
    // A .env without a local endpoint (so for real AWS; nothing is contacted) stops the demo
    // right after the bootstrap and the emulator.
    let env = "AWS_REGION=us-east-2\n";
    std::fs::write(copy.root.path().join(".env"), env).expect("write .env");

    let output = copy.run("scripts/demo-local.sh", &[], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stdout.contains("emulator running on"), "the emulator started: {stdout}\n{stderr}");
    assert_eq!(stderr.matches("==> bootstrap: ready").count(), 1, "{stderr}");
}

#[test]
fn local_emulator_up_on_its_own_still_runs_the_bootstrap() {
    let copy = ScriptCopy::new();
    let output = copy.run("scripts/common/local-emulator.sh", &["up"], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stderr.matches("==> bootstrap: ready").count(), 1, "{stderr}");
}

#[test]
fn bootstrap_skips_when_the_calling_script_already_ran_it() {
    let copy = ScriptCopy::new();
    let output = copy.run("scripts/common/bootstrap.sh", &[], &[("FLEET_BOOTSTRAPPED", &venv())]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}
