//! Settings validation: every problem at once, by key and line.

use super::*;

fn load_text(text: &str, env: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    let env: Env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let file = dotenv::parse(text, &env);
    resolve(Path::new(".env"), &file, &env)
}

const GOOD: &str =
    "AWS_REGION=us-east-2\nAUDIO_BUCKET=transcribe-fleet-dev-123456789012-us-east-2\n";

#[test]
fn minimal_file_gets_defaults_and_derived_names() {
    let loaded = load_text(GOOD, &[]).expect("valid");
    let s = &loaded.settings;
    assert_eq!(s.queue.name, "transcribe-fleet-dev-jobs");
    assert_eq!(s.queue.dlq_name, "transcribe-fleet-dev-jobs-dlq");
    assert_eq!(s.queue.visibility_timeout, 900);
    assert_eq!(s.queue.wait_seconds, 20);
    assert_eq!(s.ec2.instance_types, ["g5.xlarge", "g4dn.xlarge", "g6.xlarge"]);
    assert_eq!(s.ecr_repository, "transcribe-fleet-dev-worker");
    assert!(!s.is_local());
}

#[test]
fn several_problems_are_reported_together_by_key_and_line() {
    let text = "AWS_REGION=us-east-9\nVISIBILITY_TIMEOUT=abc\nSQS_WAIT_SECONDS=30\n";
    let error = load_text(text, &[]).expect_err("invalid");
    let keys: Vec<&str> = error.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["AWS_REGION", "AUDIO_BUCKET", "VISIBILITY_TIMEOUT", "SQS_WAIT_SECONDS"]);
    let lines: Vec<Option<usize>> = error.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [Some(1), None, Some(2), Some(3)]);
    let text = error.to_string();
    assert!(text.contains("4 problems"), "{text}");
    assert!(text.contains("fix: use a whole number from 0 to 20"), "{text}");
}

#[test]
fn environment_overrides_are_reported() {
    let loaded =
        load_text(GOOD, &[("AWS_REGION", "eu-west-1"), ("UNRELATED", "x")]).expect("valid");
    assert_eq!(loaded.settings.region, "eu-west-1");
    assert_eq!(loaded.overrides, [Override { key: "AWS_REGION".into(), line: Some(1) }]);
    assert_eq!(
        loaded.overrides[0].to_string(),
        "AWS_REGION comes from the environment, not from line 1"
    );
}

#[test]
fn c02_control_characters_in_values_are_rejected_by_key() {
    let text = format!("{GOOD}LANGUAGE='e\nn'\n");
    let error = load_text(&text, &[]).expect_err("invalid");
    assert_eq!(error.problems.len(), 1);
    assert_eq!(error.problems[0].key, "LANGUAGE");
    assert!(error.problems[0].message.contains("U+000A"));
}

#[test]
fn c05_empty_token_with_diarization_is_named() {
    let text = format!("{GOOD}DIARIZE=true\nHF_TOKEN=\n");
    let error = load_text(&text, &[]).expect_err("invalid");
    assert_eq!(error.problems.len(), 1);
    assert_eq!(error.problems[0].key, "HF_TOKEN");
    assert_eq!(error.problems[0].line, Some(4));
    assert!(error.problems[0].message.contains("DIARIZE=true"));
}

#[test]
fn c16_long_poll_wait_above_twenty_seconds_is_rejected() {
    let error =
        load_text(&format!("{GOOD}export SQS_WAIT_SECONDS=30\n"), &[]).expect_err("invalid");
    assert_eq!(error.problems[0].key, "SQS_WAIT_SECONDS");
}

#[test]
fn secrets_are_masked_in_debug_output() {
    let token = "hf_abcdefghijklmnopqrstuvwxyz0123456789";
    let loaded = load_text(&format!("{GOOD}HF_TOKEN={token}\n"), &[]).expect("valid");
    let debug = format!("{:?}", loaded.settings);
    assert!(!debug.contains(token), "{debug}");
    assert!(debug.contains("hf_…(39 chars)"), "{debug}");
    let entry = format!("{:?}", dotenv::parse(&format!("HF_TOKEN={token}"), &Env::new()).entries);
    assert!(!entry.contains(token), "{entry}");
}

#[test]
fn local_endpoint_marks_settings_local() {
    let loaded =
        load_text(&format!("{GOOD}AWS_ENDPOINT_URL=http://127.0.0.1:4566\n"), &[]).expect("valid");
    assert!(loaded.settings.is_local());
}

#[test]
fn env_example_documents_every_key() {
    let example = include_str!("../../../../.env.example");
    for spec in KEYS {
        let documented = example.lines().any(|l| {
            let l = l.trim_start_matches('#').trim_start();
            let l = l.strip_prefix("export ").unwrap_or(l);
            l.starts_with(&format!("{}=", spec.name))
        });
        assert!(documented, "{} is not in .env.example", spec.name);
    }
}
