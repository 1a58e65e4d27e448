//! The handed cases C01–C05 and the write-back rules.

use super::*;

fn no_env() -> HashMap<String, String> {
    HashMap::new()
}

fn value<'a>(file: &'a EnvFile, key: &str) -> &'a str {
    match file.get(key) {
        Some(entry) => &entry.value,
        None => panic!("{key} missing from {:?}", file.entries),
    }
}

#[test]
fn c01_export_prefix_is_stripped_but_keys_starting_with_export_are_kept() {
    let text = "export AWS_REGION=\"us-east-1\"\n\
                export AUDIO_BUCKET=\"audio-bucket\"\n\
                export    QUEUE_NAME=\"transcribe-jobs\"   # extra spaces after export\n\
                exporter=1\n\
                export_dir=/x\n\
                export\tTABBED=t\n";
    let file = parse(text, &no_env());
    assert!(file.errors.is_empty(), "{:?}", file.errors);
    assert_eq!(value(&file, "AWS_REGION"), "us-east-1");
    assert_eq!(value(&file, "AUDIO_BUCKET"), "audio-bucket");
    assert_eq!(value(&file, "QUEUE_NAME"), "transcribe-jobs");
    assert_eq!(value(&file, "exporter"), "1");
    assert_eq!(value(&file, "export_dir"), "/x");
    assert_eq!(value(&file, "TABBED"), "t");
    assert_eq!(file.entries.len(), 6);
}

#[test]
fn c02_crlf_line_endings_leave_no_carriage_return_in_values() {
    let crlf =
        parse("export AWS_REGION=\"us-east-1\"\r\nexport AUDIO_BUCKET=audio-bucket\r\n", &no_env());
    let lf =
        parse("export AWS_REGION=\"us-east-1\"\nexport AUDIO_BUCKET=audio-bucket\n", &no_env());
    assert_eq!(crlf.entries, lf.entries);
    assert_eq!(value(&crlf, "AUDIO_BUCKET"), "audio-bucket");
}

#[test]
fn c02_crlf_errors_count_physical_lines() {
    let file = parse("A=1\r\n\r\nnot an entry\r\nB=2\r\n", &no_env());
    assert_eq!(file.errors.len(), 1);
    assert_eq!(file.errors[0].line, 3);
    assert_eq!(value(&file, "B"), "2");
}

#[test]
fn c03_leading_bom_is_removed_so_the_first_key_loads() {
    let file = parse("\u{feff}export AWS_REGION=\"eu-west-1\"\nexport AUDIO_BUCKET=b\n", &no_env());
    assert!(file.errors.is_empty(), "{:?}", file.errors);
    assert_eq!(value(&file, "AWS_REGION"), "eu-west-1");
    assert_eq!(value(&file, "AUDIO_BUCKET"), "b");
}

#[test]
fn c03_bom_only_file_is_empty_without_errors() {
    let file = parse("\u{feff}", &no_env());
    assert!(file.entries.is_empty());
    assert!(file.errors.is_empty());
}

#[test]
fn c03_bom_inside_a_key_is_reported_by_name() {
    let file = parse("A=1\n\u{feff}AWS_REGION=eu-west-1\n", &no_env());
    assert_eq!(file.errors.len(), 1);
    let error = &file.errors[0];
    assert_eq!(error.line, 2);
    assert!(error.message.contains("U+FEFF"), "{}", error.message);
    assert!(error.message.contains("without BOM"), "{}", error.message);
    assert!(file.get("AWS_REGION").is_none());
}

#[test]
fn c04_dollar_and_hash_follow_the_documented_quoting_rules() {
    let text = "export HF_TOKEN=\"hf_prefix$abc\"           # double quotes: substitution applies\n\
                export HF_TOKEN_LITERAL='hf_prefix$abc'   # single quotes: literal\n\
                export NOTE=tag#1                          # no space before '#'\n\
                export WHISPER_ASR_OPTIONS='{\"beam_size\": 5, \"note\": \"a #b\"}'\n\
                export ESCAPED=\"pa\\$s\"\n\
                export BRACED=\"${NOTE}-x\"\n";
    let file = parse(text, &no_env());
    assert!(file.errors.is_empty(), "{:?}", file.errors);
    assert_eq!(value(&file, "HF_TOKEN"), "hf_prefix");
    assert_eq!(value(&file, "HF_TOKEN_LITERAL"), "hf_prefix$abc");
    assert_eq!(value(&file, "NOTE"), "tag#1");
    assert_eq!(value(&file, "WHISPER_ASR_OPTIONS"), "{\"beam_size\": 5, \"note\": \"a #b\"}");
    assert_eq!(value(&file, "ESCAPED"), "pa$s");
    assert_eq!(value(&file, "BRACED"), "tag#1-x");
}

#[test]
fn c04_undefined_substitution_warns_naming_key_and_variable() {
    let file = parse("export HF_TOKEN=\"hf_prefix$abc\"\n", &no_env());
    assert_eq!(file.warnings.len(), 1);
    let warning = &file.warnings[0];
    assert_eq!(warning.key.as_deref(), Some("HF_TOKEN"));
    assert!(warning.message.contains("$abc"), "{}", warning.message);
    assert_eq!(warning.line, 1);
}

#[test]
fn c04_substitution_falls_back_to_the_given_environment() {
    let env = HashMap::from([("HOME".to_string(), "/home/op".to_string())]);
    let file = parse("DIR=${HOME}/fleet\nLIT='${HOME}'\n", &env);
    assert_eq!(value(&file, "DIR"), "/home/op/fleet");
    assert_eq!(value(&file, "LIT"), "${HOME}");
    assert!(file.warnings.is_empty());
}

#[test]
fn c05_spaces_trailing_blanks_empty_and_multiline_values() {
    let text = "export INSTANCE_TYPE = g5.xlarge\n\
                export AUDIO_BUCKET=\"audio-bucket\"   \n\
                export HF_TOKEN=\n\
                export EXTRA_CA=\"-----BEGIN CERTIFICATE-----\n\
                MIIB...\n\
                -----END CERTIFICATE-----\"\n\
                export AFTER=1\n";
    let file = parse(text, &no_env());
    assert!(file.errors.is_empty(), "{:?}", file.errors);
    assert_eq!(value(&file, "INSTANCE_TYPE"), "g5.xlarge");
    assert_eq!(value(&file, "AUDIO_BUCKET"), "audio-bucket");
    assert_eq!(value(&file, "HF_TOKEN"), "");
    assert_eq!(
        value(&file, "EXTRA_CA"),
        "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----"
    );
    assert_eq!(file.get("AFTER").map(|e| e.line), Some(7));
}

#[test]
fn c05_unclosed_quote_names_the_starting_line_and_key() {
    let file = parse("A=1\nB=\"never closed\nC=3\n", &no_env());
    assert_eq!(file.errors.len(), 1);
    assert_eq!(file.errors[0].line, 2);
    assert_eq!(file.errors[0].key.as_deref(), Some("B"));
    assert!(file.errors[0].message.contains("never closed"));
    assert_eq!(value(&file, "A"), "1");
}

#[test]
fn text_after_closing_quote_is_an_error_not_part_of_the_value() {
    let file = parse("A=\"x\"y\n", &no_env());
    assert_eq!(file.errors.len(), 1);
    assert!(file.get("A").is_none());
}

#[test]
fn duplicate_key_keeps_last_value_and_warns() {
    let file = parse("A=1\nA=2\n", &no_env());
    assert_eq!(value(&file, "A"), "2");
    assert_eq!(file.warnings.len(), 1);
    assert_eq!(file.warnings[0].line, 2);
}

#[test]
fn update_rewrites_in_place_and_keeps_comments_and_order() {
    let text = "# settings\nexport AWS_REGION=us-east-1\n\n# queue\nexport QUEUE_URL=\"old\nvalue\"\nexport Z=1\n";
    let out = apply_updates(text, &[("QUEUE_URL", "http://127.0.0.1:4566/0000/q"), ("NEW", "a b")]);
    assert_eq!(
        out,
        "# settings\nexport AWS_REGION=us-east-1\n\n# queue\n\
         export QUEUE_URL=http://127.0.0.1:4566/0000/q\nexport Z=1\nexport NEW='a b'\n"
    );
}

#[test]
fn update_keeps_crlf_and_bom() {
    let out = apply_updates("\u{feff}A=1\r\nB=2\r\n", &[("A", "3")]);
    assert_eq!(out, "\u{feff}A=3\r\nB=2\r\n");
}

#[test]
fn formatted_values_read_back_exactly() {
    for value in ["plain", "with space", "it's $HOME \"q\" \\ end", "", "a#b", "multi\nline"] {
        let line = format_entry("K", value, true);
        let file = parse(&line, &no_env());
        assert_eq!(file.get("K").map(|e| e.value.as_str()), Some(value), "{line}");
        assert!(file.warnings.is_empty(), "{line}: {:?}", file.warnings);
    }
}

#[cfg(unix)]
#[test]
fn update_writes_mode_0600_atomically() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(".env");
    std::fs::write(&path, "A=1\n").expect("write");
    update(&path, &[("B", "2")]).expect("update");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "A=1\nB=2\n");
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
    assert_eq!(leftovers.len(), 1, "temporary file left behind");
}
