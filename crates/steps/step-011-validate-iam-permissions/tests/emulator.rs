//! step-011 against a private moto server, with drift made by hand and repaired by step-010.

use common::iam_policy::worker_policy;
use common::ui::Scripted;
use common::{Mark, Report, Status};
use testkit::iam::IamWorld;

async fn validate(w: &IamWorld) -> Report {
    let ctx =
        testkit::context(step_011_validate_iam_permissions::NAME, &w.project, Scripted::new([]));
    let args = step_011_validate_iam_permissions::Args::default();
    step_011_validate_iam_permissions::run(ctx, args).await.expect("step-011 runs")
}

async fn setup(w: &IamWorld) -> Report {
    let ctx = testkit::context(step_010_setup_iam_permissions::NAME, &w.project, Scripted::new([]));
    let args = step_010_setup_iam_permissions::Args::default();
    step_010_setup_iam_permissions::run(ctx, args).await.expect("step-010 runs")
}

fn problems(report: &Report) -> Vec<String> {
    let items = report.items.iter().filter(|i| i.mark == Mark::Problem);
    items.map(|i| format!("{}: {}", i.label, i.detail)).collect()
}

#[tokio::test]
async fn passes_after_step_010() {
    let w = IamWorld::start("clean").await;
    setup(&w).await;
    let report = validate(&w).await;
    assert_eq!(report.status, Status::Ok, "{}", report.to_text());
    assert!(problems(&report).is_empty());
    assert_eq!(report.count(Mark::Passed), 8, "{}", report.to_text());
    assert_eq!(report.status.exit_code(), 0);
}

#[tokio::test]
async fn fresh_account_names_every_missing_resource_and_the_fix() {
    let w = IamWorld::start("empty").await;
    let report = validate(&w).await;
    assert_eq!(report.status, Status::Failed);
    assert_eq!(report.status.exit_code(), 1);
    let found = problems(&report);
    for name in [w.scope.policy_name(), w.scope.role_name(), w.scope.profile_name()] {
        assert!(found.iter().any(|p| p.contains(&format!("`{name}` does not exist"))), "{found:?}");
    }
    assert!(
        found.iter().all(|p| p.ends_with("fix: run ./scripts/step-010-setup-iam-permissions.sh"))
    );
    assert_eq!(report.next, vec!["./scripts/step-010-setup-iam-permissions.sh".to_string()]);
}

#[tokio::test]
async fn removed_statement_is_named_by_011_and_repaired_by_010() {
    let w = IamWorld::start("removed").await;
    setup(&w).await;
    let mut narrowed = worker_policy(&w.scope);
    narrowed["Statement"].as_array_mut().expect("list").retain(|s| s["Sid"] != "ReadInputAudio");
    let version =
        w.iam.create_policy_version().policy_arn(w.scope.policy_arn()).set_as_default(true);
    version.policy_document(narrowed.to_string()).send().await.expect("drift by hand");

    let report = validate(&w).await;
    assert_eq!(report.status, Status::Failed, "{}", report.to_text());
    let found = problems(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("statement `ReadInputAudio` is missing"), "{found:?}");

    let repair = setup(&w).await;
    assert!(repair.items.iter().any(|i| i.mark == Mark::Updated && i.label == "policy"));
    assert_eq!(validate(&w).await.status, Status::Ok);
}

#[tokio::test]
async fn missing_tag_foreign_attachment_and_empty_profile_are_drift() {
    let w = IamWorld::start("drift").await;
    setup(&w).await;
    let (role, profile) = (w.scope.role_name(), w.scope.profile_name());
    w.iam.untag_role().role_name(&role).tag_keys("Environment").send().await.expect("untag");
    let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
    w.iam.attach_role_policy().role_name(&role).policy_arn(admin).send().await.expect("attach");
    let remove = w.iam.remove_role_from_instance_profile().instance_profile_name(&profile);
    remove.role_name(&role).send().await.expect("empty the profile");

    let report = validate(&w).await;
    let found = problems(&report);
    assert!(
        found.iter().any(|p| p.starts_with("role tags: missing or different: Environment=test")),
        "{found:?}"
    );
    assert!(found.iter().any(|p| p.contains("AdministratorAccess` is attached")), "{found:?}");
    assert!(found.iter().any(|p| p.contains(&format!("`{profile}` holds no role"))), "{found:?}");
    assert_eq!(found.len(), 3, "{found:?}");

    setup(&w).await;
    let after = validate(&w).await;
    assert_eq!(after.status, Status::Ok, "{}", after.to_text());
}
