use super::*;

fn segment(start: f64, end: f64, text: &str) -> Segment {
    Segment {
        start: Some(start),
        end: Some(end),
        text: text.to_string(),
        words: Vec::new(),
        speaker: None,
        no_speech_prob: None,
        avg_logprob: None,
    }
}

fn reason(body: &str) -> String {
    JobMessage::parse(body).expect_err("should be rejected").0
}

#[test]
fn a_complete_job_parses_and_unknown_fields_are_tolerated() {
    let body = r#"{"job_id":"j1","s3_input_path":"s3://audio/in/a.wav",
        "s3_output_path":"s3://out/o/","priority":1,"note":{"x":1}}"#;
    let job = JobMessage::parse(body).expect("valid job");
    assert_eq!(job.job_id, "j1");
    assert_eq!(job.s3_input_path, S3Uri::new("audio", "in/a.wav"));
    assert_eq!(job.s3_output_path, S3Uri::new("out", "o/"));
    assert_eq!(job.output_formats, OutputFormat::ALL.to_vec());
    assert!(!job.diarize);
    assert_eq!(JobMessage::parse(&job.to_body()).expect("round trip"), job);
}

#[test]
fn c12_bodies_that_are_not_jobs_are_rejected_by_field_name() {
    assert!(reason("hello").contains("not valid JSON"));
    assert!(reason("[1,2]").contains("not a JSON object"));
    let empty = reason("{}");
    for field in ["job_id", "s3_input_path", "s3_output_path"] {
        assert!(empty.contains(&format!("field `{field}` is missing")), "{empty}");
    }
    let no_output = reason(r#"{"job_id":"j1","s3_input_path":"s3://audio/a.wav"}"#);
    assert_eq!(no_output, "field `s3_output_path` is missing");
    let wrong =
        reason(r#"{"job_id":123,"s3_input_path":"gs://x/a.wav","s3_output_path":"s3://t/o/"}"#);
    assert!(wrong.contains("field `job_id` must be a non-empty string, got a number"), "{wrong}");
    assert!(
        wrong.contains("field `s3_input_path`: `gs://x/a.wav` does not start with s3://"),
        "{wrong}"
    );
    let test_event =
        r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-01-01T00:00:00Z"}"#;
    assert!(reason(test_event).contains("S3 test event"));
    let formats = reason(
        r#"{"job_id":"j","s3_input_path":"s3://a/b.wav","s3_output_path":"s3://a/o/","output_formats":["pdf"]}"#,
    );
    assert!(formats.contains("`output_formats`"), "{formats}");
}

#[test]
fn c08_keys_are_taken_literally() {
    let uri = S3Uri::parse("s3://audio/in/my talk+v2 ü%20.m4a").expect("valid");
    assert_eq!(uri.key, "in/my talk+v2 ü%20.m4a");
    assert_eq!(uri.file_name(), "my talk+v2 ü%20.m4a");
    assert_eq!(uri.to_string(), "s3://audio/in/my talk+v2 ü%20.m4a");
    let job = JobMessage::new("j", uri, S3Uri::new("out", "done/x y+"));
    assert_eq!(job.stem(), "my talk+v2 ü%20");
    assert_eq!(job.output(OutputFormat::Srt).key, "done/x y+/my talk+v2 ü%20.srt");
}

#[test]
fn output_keys_join_prefix_and_stem_once() {
    assert_eq!(output_key("o/", "a", OutputFormat::Json), "o/a.json");
    assert_eq!(output_key("o", "a", OutputFormat::Vtt), "o/a.vtt");
    assert_eq!(output_key("", "a", OutputFormat::Txt), "a.txt");
    assert_eq!(stem_of("talk.final.m4a"), "talk.final");
    assert_eq!(stem_of(".hidden"), ".hidden");
    assert_eq!(stem_of("noext"), "noext");
    assert_eq!(worker_status_key("w-1"), "status/workers/w-1.json");
}

#[test]
fn formats_always_include_json_once() {
    let mut job = JobMessage::new("j", S3Uri::new("a", "b.wav"), S3Uri::new("a", "o/"));
    job.output_formats = vec![OutputFormat::Txt, OutputFormat::Txt];
    assert_eq!(job.formats(), vec![OutputFormat::Json, OutputFormat::Txt]);
}

#[test]
fn s3_addresses_need_a_bucket() {
    assert!(S3Uri::parse("s3://").is_err());
    assert!(S3Uri::parse("s3:///key").is_err());
    assert_eq!(S3Uri::parse("s3://bucket").expect("bucket only").key, "");
}

#[test]
fn srt_and_vtt_render_numbered_timed_cues() {
    let segments =
        vec![segment(0.0, 3.5, " The quick fox. "), segment(3.92, 3725.0015, "Second line")];
    assert_eq!(
        render_srt(&segments),
        "1\n00:00:00,000 --> 00:00:03,500\nThe quick fox.\n\n\
         2\n00:00:03,920 --> 01:02:05,002\nSecond line\n\n"
    );
    assert_eq!(
        render_vtt(&segments),
        "WEBVTT\n\n00:00:00.000 --> 00:00:03.500\nThe quick fox.\n\n\
         00:00:03.920 --> 01:02:05.002\nSecond line\n\n"
    );
    assert_eq!(render_txt(&segments), "The quick fox.\nSecond line\n");
}

#[test]
fn c19_no_speech_renders_valid_empty_files() {
    assert_eq!(render_srt(&[]), "");
    assert_eq!(render_vtt(&[]), "WEBVTT\n\n");
    assert_eq!(render_txt(&[]), "");
}

#[test]
fn speakers_prefix_cues() {
    let mut s = segment(1.0, 2.0, "hi");
    s.speaker = Some("SPEAKER_00".into());
    assert!(render_srt(&[s]).contains("[SPEAKER_00] hi"));
}

#[test]
fn word_error_rate_counts_edits_over_reference_words() {
    assert_eq!(word_error_rate("The quick fox.", "the quick fox"), 0.0);
    let wer = word_error_rate(
        "The quick brown fox jumps over the lazy dog. This sample checks the transcription fleet from end to end.",
        "The quick brown fox jump over the lazy nog. This sample checks the transcription fleet from end to end.",
    );
    assert!((wer - 2.0 / 19.0).abs() < 1e-9, "{wer}");
    assert_eq!(word_error_rate("a b", ""), 1.0);
}
