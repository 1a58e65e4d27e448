use std::path::Path;

use serde_json::json;

use super::document::{Difference, decode, diff, same};
use super::*;
use crate::settings::Env;

fn settings(extra: &str) -> Settings {
    let text = format!(
        "AWS_REGION=us-east-2\nPROJECT_NAME=fleet\nENVIRONMENT=dev\nAUDIO_BUCKET=fleet-audio\n{extra}"
    );
    let file = crate::dotenv::parse(&text, &Env::new());
    match crate::settings::resolve(Path::new(".env"), &file, &Env::new()) {
        Ok(loaded) => loaded.settings,
        Err(e) => panic!("{e}"),
    }
}

fn scope(extra: &str) -> Scope {
    Scope::new(&settings(extra), "123456789012")
}

fn statements(document: &Value) -> Vec<Value> {
    document["Statement"].as_array().cloned().unwrap_or_default()
}

#[test]
fn names_and_arns_follow_the_prefix() {
    let scope = scope("");
    assert_eq!(scope.role_name(), "fleet-dev-worker-role");
    assert_eq!(scope.profile_name(), "fleet-dev-worker-profile");
    assert_eq!(scope.policy_arn(), "arn:aws:iam::123456789012:policy/fleet-dev-worker-policy");
    assert_eq!(scope.queue_arn, "arn:aws:sqs:us-east-2:123456789012:fleet-dev-jobs");
    assert_eq!(scope.dlq_arn, "arn:aws:sqs:us-east-2:123456789012:fleet-dev-jobs-dlq");
    assert_eq!(
        scope.repository_arn(),
        "arn:aws:ecr:us-east-2:123456789012:repository/fleet-dev-worker"
    );
    assert_eq!(partition("cn-north-1"), "aws-cn");
    assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
}

#[test]
fn queue_arns_written_by_step_020_win_over_derived_ones() {
    let scope = scope("QUEUE_ARN=arn:aws:sqs:us-east-2:123456789012:custom\n");
    assert_eq!(scope.queue_arn, "arn:aws:sqs:us-east-2:123456789012:custom");
}

#[test]
fn worker_policy_uses_a_wildcard_resource_only_for_the_ecr_token() {
    let policy = worker_policy(&scope(""));
    for statement in statements(&policy) {
        let resources = statement["Resource"].as_array().cloned().unwrap_or_default();
        let actions = statement["Action"].as_array().cloned().unwrap_or_default();
        assert!(actions.iter().all(|a| !a.as_str().unwrap_or("*").contains('*')), "{statement}");
        if resources.contains(&json!("*")) {
            assert_eq!(actions, vec![json!("ecr:GetAuthorizationToken")]);
        }
    }
    let text = policy.to_string();
    assert!(text.contains("arn:aws:s3:::fleet-audio/input/*"));
    assert!(!text.contains("ssm:GetParameter"), "no token parameter, no SSM statement");
    assert!(!text.contains("s3:DeleteObject"));
}

#[test]
fn hf_token_parameter_adds_one_scoped_statement() {
    let policy = worker_policy(&scope("HF_TOKEN_PARAMETER=/fleet/hf-token\n"));
    let last = statements(&policy).pop().expect("statement");
    assert_eq!(last["Sid"], "ReadHuggingFaceToken");
    assert_eq!(last["Resource"][0], "arn:aws:ssm:us-east-2:123456789012:parameter/fleet/hf-token");
}

#[test]
fn every_sid_is_unique_and_alphanumeric() {
    let scope = scope("HF_TOKEN_PARAMETER=hf\n");
    for document in [worker_policy(&scope), operator_policy(&scope), trust_policy()] {
        let sids: Vec<String> = statements(&document)
            .iter()
            .map(|s| s["Sid"].as_str().unwrap_or("").to_string())
            .collect();
        let unique: std::collections::BTreeSet<&String> = sids.iter().collect();
        assert_eq!(unique.len(), sids.len(), "{sids:?}");
        assert!(sids.iter().all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())));
    }
}

#[test]
fn operator_policy_fills_every_template_and_parses_every_condition() {
    let policy = operator_policy(&scope(""));
    let text = policy.to_string();
    for placeholder in ["{prefix}", "{account}", "{partition}", "{region}", "{hf_parameter_arn}"] {
        assert!(!text.contains(placeholder), "{placeholder} left in the policy");
    }
    for statement in statements(&policy) {
        assert_ne!(statement.get("Condition"), Some(&Value::Null), "{statement}");
        let resources = statement["Resource"].as_array().cloned().unwrap_or_default();
        assert!(!resources.is_empty(), "{statement}");
        assert!(resources.iter().all(|r| !r.as_str().unwrap_or("").is_empty()), "{statement}");
    }
    assert!(text.contains("arn:aws:iam::123456789012:role/fleet-dev-*"));
    assert!(text.contains("\"aws:ResourceTag/Project\":\"fleet\""));
}

#[test]
fn operator_policy_names_the_token_parameter_only_when_set() {
    let with = operator_policy(&scope("HF_TOKEN_PARAMETER=/fleet/hf\n")).to_string();
    assert!(with.contains("parameter/fleet/hf"));
    let without = operator_policy(&scope("")).to_string();
    assert!(!without.contains("parameter/fleet/hf"));
}

#[test]
fn url_encoded_documents_decode_as_iam_returns_them() {
    let encoded = "%7B%22Version%22%3A%20%222012-10-17%22%2C%20%22Statement%22%3A%20%5B%5D%7D";
    assert_eq!(
        decode(encoded).expect("decoded"),
        json!({"Version": "2012-10-17", "Statement": []})
    );
    assert_eq!(decode("{\"a\": \"100%25\"}").expect("plain")["a"], "100%25");
    assert!(decode("%7B%2").is_err());
}

#[test]
fn single_strings_order_and_statement_objects_compare_equal() {
    let ours = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "A", "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
         "Resource": ["arn:aws:s3:::b/*"], "Condition": {"Bool": {"aws:SecureTransport": [true]}}},
    ]});
    let theirs = json!({"Statement": {"Resource": "arn:aws:s3:::b/*", "Effect": "Allow",
        "Condition": {"Bool": {"aws:SecureTransport": "true"}},
        "Action": ["s3:GetObject", "s3:PutObject", "s3:GetObject"], "Sid": "A"},
        "Version": "2012-10-17"});
    assert!(same(&ours, &theirs));
    assert!(diff(&ours, &theirs).is_empty());
}

#[test]
fn diff_names_missing_extra_and_changed_statements_by_sid() {
    let expected = worker_policy(&scope(""));
    let mut actual = expected.clone();
    let list = actual["Statement"].as_array_mut().expect("statements");
    list.retain(|s| s["Sid"] != "ReadInputAudio");
    list[0]["Action"] = json!(["sqs:ReceiveMessage", "sqs:PurgeQueue"]);
    list.push(json!({"Sid": "Everything", "Effect": "Allow", "Action": "*", "Resource": "*"}));
    let differences = diff(&expected, &actual);
    assert!(differences.contains(&Difference::Missing { sid: "ReadInputAudio".into() }));
    let text: Vec<String> = differences.iter().map(ToString::to_string).collect();
    assert!(text.iter().any(|t| t == "statement `Everything` is extra: Allow * on *"), "{text:?}");
    let changed =
        text.iter().find(|t| t.starts_with("statement `ReceiveJobs` differs")).expect("changed");
    assert!(changed.contains("missing sqs:ChangeMessageVisibility"), "{changed}");
    assert!(changed.contains("extra sqs:PurgeQueue"), "{changed}");
    assert_eq!(differences.len(), 3);
}

#[test]
fn access_denied_codes_are_recognised() {
    assert!(is_access_denied(Some("AccessDenied")));
    assert!(is_access_denied(Some("UnauthorizedOperation")));
    assert!(!is_access_denied(Some("NoSuchEntity")));
    assert!(!is_access_denied(None));
    assert!(access_denied_hint().contains(".local/operator-policy.json"));
}
