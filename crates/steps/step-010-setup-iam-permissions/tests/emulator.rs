//! step-010 against a private moto server: create, re-run, repair.

use common::iam_policy::{SETUP_STEP, worker_policy};
use common::sdk::iam;
use common::ui::Scripted;
use common::{Mark, Report, Status};
use serde_json::json;
use step_010_setup_iam_permissions::{Args, NAME, run};
use testkit::iam::IamWorld;

async fn step(w: &IamWorld) -> Report {
    let ctx = testkit::context(NAME, &w.project, Scripted::new([]));
    run(ctx, Args::default()).await.expect("step-010 runs")
}

async fn profile_roles(w: &IamWorld) -> Vec<String> {
    let out = w.iam.get_instance_profile().instance_profile_name(w.scope.profile_name());
    let out = out.send().await.expect("profile");
    let profile = out.instance_profile.expect("profile body");
    profile.roles().iter().map(|r| r.role_name().to_string()).collect()
}

async fn default_document(w: &IamWorld) -> serde_json::Value {
    let arn = w.scope.policy_arn();
    let policy = common::iam_policy::remote::find_policy(&w.iam, &arn).await.expect("read");
    let policy = policy.expect("policy exists");
    common::iam_policy::remote::default_document(&w.iam, &arn, &policy).await.expect("doc")
}

async fn create_role_by_hand(w: &IamWorld, trust: &serde_json::Value) {
    let role = w.iam.create_role().role_name(w.scope.role_name());
    role.assume_role_policy_document(trust.to_string()).send().await.expect("role by hand");
}

fn has(report: &Report, mark: Mark, label: &str) -> bool {
    report.items.iter().any(|i| i.mark == mark && i.label == label)
}

fn tag_pairs(tags: &[iam::types::Tag]) -> Vec<(String, String)> {
    tags.iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()
}

#[tokio::test]
async fn fresh_account_gets_role_profile_policy_attachments_and_tags() {
    let w = IamWorld::start("fresh").await;
    let report = step(&w).await;
    assert_eq!(report.status, Status::Ok, "{}", report.to_text());
    for label in ["policy", "role", "instance profile", "profile role", "operator policy"] {
        assert!(has(&report, Mark::Created, label), "{label} not created:\n{}", report.to_text());
    }

    assert_eq!(profile_roles(&w).await, vec![w.scope.role_name()]);
    assert!(common::iam_policy::document::same(
        &default_document(&w).await,
        &worker_policy(&w.scope)
    ));
    let attached =
        common::iam_policy::remote::attached_policies(&w.iam, &w.scope.role_name()).await;
    let mut attached = attached.expect("attachments");
    attached.sort();
    let mut wanted = vec![w.scope.policy_arn(), w.scope.ssm_core_policy_arn()];
    wanted.sort();
    assert_eq!(attached, wanted);

    let role = w.iam.get_role().role_name(w.scope.role_name()).send().await.expect("role");
    let role_tags = tag_pairs(role.role.expect("role body").tags());
    assert!(role_tags.contains(&("CreatedBy".into(), SETUP_STEP.into())), "{role_tags:?}");
    assert!(role_tags.contains(&("Project".into(), "fresh".into())), "{role_tags:?}");
    let policy = w.iam.get_policy().policy_arn(w.scope.policy_arn()).send().await.expect("policy");
    assert_eq!(tag_pairs(policy.policy.expect("policy body").tags()).len(), 4);
    let profile = w.iam.get_instance_profile().instance_profile_name(w.scope.profile_name());
    let profile = profile.send().await.expect("profile").instance_profile.expect("body");
    assert_eq!(tag_pairs(profile.tags()).len(), 4);

    let file = w.project.root().join(".local/operator-policy.json");
    let operator: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).expect("operator policy file"))
            .expect("JSON");
    assert!(operator.to_string().contains("iam:CreatePolicyVersion"));
}

#[tokio::test]
async fn second_run_reports_nothing_changed() {
    let w = IamWorld::start("rerun").await;
    step(&w).await;
    let report = step(&w).await;
    assert_eq!(report.status, Status::Ok);
    assert!(!report.changed_anything(), "{}", report.to_text());
    assert_eq!(report.summary, "nothing changed");
    assert!(has(&report, Mark::Unchanged, "policy"));
}

#[tokio::test]
async fn role_left_by_an_interrupted_run_gets_its_profile_policy_and_tags() {
    let w = IamWorld::start("roleonly").await;
    create_role_by_hand(&w, &common::iam_policy::trust_policy()).await;
    let report = step(&w).await;
    assert!(has(&report, Mark::Unchanged, "role"), "{}", report.to_text());
    assert!(has(&report, Mark::Updated, "role tags"), "{}", report.to_text());
    assert!(has(&report, Mark::Created, "instance profile"));
    assert_eq!(profile_roles(&w).await, vec![w.scope.role_name()]);
    assert!(!step(&w).await.changed_anything());
}

#[tokio::test]
async fn profile_without_role_gets_the_role() {
    let w = IamWorld::start("profonly").await;
    let profile = w.iam.create_instance_profile().instance_profile_name(w.scope.profile_name());
    profile.send().await.expect("profile by hand");
    let report = step(&w).await;
    assert!(has(&report, Mark::Created, "role"), "{}", report.to_text());
    assert!(has(&report, Mark::Created, "profile role"), "{}", report.to_text());
    assert!(has(&report, Mark::Updated, "profile tags"), "{}", report.to_text());
    assert_eq!(profile_roles(&w).await, vec![w.scope.role_name()]);
}

#[tokio::test]
async fn profile_holding_a_foreign_role_is_given_back_the_worker_role() {
    let w = IamWorld::start("foreign").await;
    step(&w).await;
    let (profile, role) = (w.scope.profile_name(), w.scope.role_name());
    let remove = w.iam.remove_role_from_instance_profile().instance_profile_name(&profile);
    remove.role_name(&role).send().await.expect("remove");
    let trust = common::iam_policy::trust_policy().to_string();
    let other = w.iam.create_role().role_name("admin-ish").assume_role_policy_document(trust);
    other.send().await.expect("foreign role");
    let add = w.iam.add_role_to_instance_profile().instance_profile_name(&profile);
    add.role_name("admin-ish").send().await.expect("add foreign");

    let report = step(&w).await;
    assert!(has(&report, Mark::Deleted, "profile role"), "{}", report.to_text());
    assert_eq!(profile_roles(&w).await, vec![role]);
}

#[tokio::test]
async fn drifted_trust_and_extra_attachment_are_repaired() {
    let w = IamWorld::start("trust").await;
    step(&w).await;
    let role = w.scope.role_name();
    let lambda = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": ["ec2.amazonaws.com", "lambda.amazonaws.com"]},
        "Action": "sts:AssumeRole"}]});
    let update = w.iam.update_assume_role_policy().role_name(&role);
    update.policy_document(lambda.to_string()).send().await.expect("drift trust");
    let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
    w.iam.attach_role_policy().role_name(&role).policy_arn(admin).send().await.expect("attach");

    let report = step(&w).await;
    assert!(has(&report, Mark::Updated, "role trust"), "{}", report.to_text());
    let was: Vec<&str> =
        report.items.iter().filter(|i| i.label == "  drift").map(|i| i.detail.as_str()).collect();
    assert!(
        was.iter().any(|d| d.contains("to Service ec2.amazonaws.com, lambda.amazonaws.com")),
        "{was:?}"
    );
    assert!(has(&report, Mark::Deleted, "attached"), "{}", report.to_text());
    let attached =
        common::iam_policy::remote::attached_policies(&w.iam, &role).await.expect("list");
    assert!(!attached.iter().any(|a| a == admin));
    assert!(!step(&w).await.changed_anything());
}

#[tokio::test]
async fn changed_policy_with_five_versions_drops_the_oldest_non_default_first() {
    let w = IamWorld::start("versions").await;
    step(&w).await;
    let arn = w.scope.policy_arn();
    let mut narrowed = worker_policy(&w.scope);
    narrowed["Statement"].as_array_mut().expect("list").retain(|s| s["Sid"] != "WriteWorkerLogs");
    for _ in 0..4 {
        let version = w.iam.create_policy_version().policy_arn(&arn).set_as_default(true);
        version.policy_document(narrowed.to_string()).send().await.expect("version by hand");
    }

    let report = step(&w).await;
    assert_eq!(report.status, Status::Ok, "{}", report.to_text());
    let deleted = report.items.iter().find(|i| i.label == "policy version").expect("pruned");
    assert!(deleted.detail.starts_with("`v1`"), "{}", deleted.detail);
    assert!(report.items.iter().any(|i| i.detail.contains("`WriteWorkerLogs` is missing")));
    let versions = w.iam.list_policy_versions().policy_arn(&arn).send().await.expect("versions");
    let ids: Vec<&str> = versions.versions().iter().filter_map(|v| v.version_id()).collect();
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert!(!ids.contains(&"v1"), "{ids:?}");
    assert!(common::iam_policy::document::same(
        &default_document(&w).await,
        &worker_policy(&w.scope)
    ));
}

#[tokio::test]
async fn operator_policy_only_writes_the_file_and_leaves_iam_alone() {
    let w = IamWorld::start("operator").await;
    let ctx = testkit::context(NAME, &w.project, Scripted::new([]));
    let args = Args { operator_policy_only: true, ..Args::default() };
    let report = run(ctx, args).await.expect("runs");
    assert!(has(&report, Mark::Created, "operator policy"));
    assert!(has(&report, Mark::Info, "ManageWorkerRole"), "{}", report.to_text());
    assert!(w.project.root().join(".local/operator-policy.json").exists());
    let role = common::iam_policy::remote::find_role(&w.iam, &w.scope.role_name()).await;
    assert!(role.expect("read").is_none());
}
