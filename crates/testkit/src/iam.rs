//! What the tests of the IAM steps (step-010, step-011) start from.

use common::iam_policy::Scope;
use common::sdk::iam;

use crate::{Emulator, TestProject};

/// A private emulator, a local project in it, the worker's IAM scope in the emulator's
/// account and an IAM client aimed at the emulator.
#[derive(Debug)]
pub struct IamWorld {
    _emulator: Emulator,
    /// The project, its `.env` aimed at the emulator.
    pub project: TestProject,
    /// The names and ARNs of the worker's IAM resources.
    pub scope: Scope,
    /// IAM against the emulator.
    pub iam: iam::Client,
}

impl IamWorld {
    /// Starts an emulator and makes the project `name` in it.
    pub async fn start(name: &str) -> Self {
        let emulator = Emulator::start();
        let project = TestProject::local(&emulator, name);
        let settings = project.settings();
        let scope = Scope::new(&settings, "123456789012");
        let iam = iam::Client::new(&crate::sdk_config(&settings).await);
        Self { _emulator: emulator, project, scope, iam }
    }
}
