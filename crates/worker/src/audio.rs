//! Probing and decoding input audio with the ffmpeg tools (case C17), and the self-test clip.

use std::path::Path;

use tokio::io::AsyncReadExt as _;
use tokio::process::Command;

/// Sample rate the engine expects.
pub const SAMPLE_RATE: u32 = 16_000;

/// How much of a file's start is searched for the `data` chunk of a WAV header.
const HEADER_WINDOW: u64 = 64 * 1024;

/// Seconds of audio in `path` when the file already is what the engine reads: a RIFF/WAVE
/// file with plain PCM (format tag 1), one channel, 16 kHz, 16 bits, and all the data its
/// header announces. Such an input needs neither ffprobe nor ffmpeg. `None` for anything
/// else, including WAVE_FORMAT_EXTENSIBLE, which the engine's reader does not take, and a
/// file cut short, which ffmpeg decodes as far as it goes.
pub async fn engine_ready_seconds(path: &Path) -> Option<f64> {
    let mut file = tokio::fs::File::open(path).await.ok()?;
    let length = file.metadata().await.ok()?.len();
    let mut head = vec![0; HEADER_WINDOW.min(length) as usize];
    file.read_exact(&mut head).await.ok()?;
    let data = engine_ready_data_length(&head, length)?;
    Some(data as f64 / f64::from(SAMPLE_RATE * 2))
}

/// The length of the `data` chunk when `head`, the start of a file `length` bytes long, is
/// the header of a WAV the engine reads as it is.
fn engine_ready_data_length(head: &[u8], length: u64) -> Option<u64> {
    if head.get(0..4)? != b"RIFF" || head.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut at = 12_usize;
    let mut engine_format = false;
    while let Some(chunk) = head.get(at..at + 8) {
        let size = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        let body = at + 8;
        match &chunk[..4] {
            b"fmt " => {
                let fmt = head.get(body..body + 16)?;
                let field = |i: usize| u16::from_le_bytes([fmt[i], fmt[i + 1]]);
                let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
                // Format tag, channels, sample rate, bits per sample.
                engine_format =
                    field(0) == 1 && field(2) == 1 && rate == SAMPLE_RATE && field(14) == 16;
            }
            b"data" => {
                let whole = body as u64 + u64::from(size) <= length;
                let usable = engine_format && whole && size > 0 && size % 2 == 0;
                return usable.then_some(u64::from(size));
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        at = body.checked_add(usize::try_from(size).ok()?.checked_add(size as usize & 1)?)?;
    }
    None
}

/// What ffprobe says about an input.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// Container format name(s).
    pub format: String,
    /// Codec of the first audio stream.
    pub codec: String,
    /// Duration the container claims, in seconds.
    pub duration: Option<f64>,
    /// Number of audio streams.
    pub audio_streams: usize,
}

impl Probe {
    /// `format mov,mp4 / codec aac / 12.3 s`, for logs and failure reasons.
    pub fn summary(&self) -> String {
        let duration = self.duration.map_or("unknown length".to_string(), |d| format!("{d:.1} s"));
        format!("format {}, codec {}, {duration}", self.format, self.codec)
    }
}

/// Runs ffprobe on `path`. An error is a permanent failure: the text says why.
pub async fn probe(path: &Path) -> Result<Probe, String> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries"])
        .arg("format=format_name,duration:stream=codec_type,codec_name")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .await
        .map_err(|e| format!("cannot run ffprobe: {e}"))?;
    let stderr = first_line(&String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        return Err(format!("ffprobe: {stderr}"));
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("ffprobe output unreadable: {e}"))?;
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let audio: Vec<_> = streams.iter().filter(|s| s["codec_type"] == "audio").collect();
    let probe = Probe {
        format: json["format"]["format_name"].as_str().unwrap_or("unknown").to_string(),
        codec: audio.first().and_then(|s| s["codec_name"].as_str()).unwrap_or("none").to_string(),
        duration: json["format"]["duration"].as_str().and_then(|d| d.parse().ok()),
        audio_streams: audio.len(),
    };
    if probe.audio_streams == 0 {
        return Err(format!("no audio stream ({})", probe.summary()));
    }
    Ok(probe)
}

/// Decodes `input` to a 16 kHz mono 16-bit WAV at `output`; returns its duration in seconds.
pub async fn decode(input: &Path, output: &Path) -> Result<f64, String> {
    let result = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-v", "error", "-y", "-i"])
        .arg(input)
        .args(["-vn", "-ac", "1", "-ar", &SAMPLE_RATE.to_string(), "-sample_fmt", "s16"])
        .args(["-f", "wav"])
        .arg(output)
        .output()
        .await
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let stderr = String::from_utf8_lossy(&result.stderr);
    if !result.status.success() {
        return Err(format!("ffmpeg: {}", first_line(&stderr)));
    }
    if !stderr.trim().is_empty() {
        tracing::warn!(
            "ffmpeg reported problems decoding {}: {}",
            input.display(),
            first_line(&stderr)
        );
    }
    let bytes =
        tokio::fs::metadata(output).await.map_err(|e| format!("no decoded audio: {e}"))?.len();
    Ok(bytes.saturating_sub(44) as f64 / f64::from(SAMPLE_RATE * 2))
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no detail")
        .chars()
        .take(300)
        .collect()
}

/// Writes the self-test clip: two seconds of a synthetic sung "ah", pulsing twice a second.
///
/// A pure tone would be dropped by voice activity detection and never reach the model; this
/// vowel (120 Hz harmonics shaped by formants at 700 and 1200 Hz) is classed as speech, so the
/// self-test runs the encoder and decoder as a real job does.
pub fn write_self_test_clip(path: &Path) -> std::io::Result<()> {
    let count = 2 * SAMPLE_RATE as usize;
    let mut samples = Vec::with_capacity(count);
    for n in 0..count {
        let t = n as f64 / f64::from(SAMPLE_RATE);
        let mut vowel = 0.0;
        for harmonic in 1..30 {
            let frequency = f64::from(harmonic) * 120.0;
            let weight: f64 = [700.0, 1200.0]
                .iter()
                .map(|f: &f64| (-((frequency - f) / 300.0).powi(2)).exp())
                .sum();
            vowel += weight * (2.0 * std::f64::consts::PI * frequency * t).sin();
        }
        samples.push(vowel * (2.0 * std::f64::consts::PI * 2.0 * t).sin().abs());
    }
    let peak = samples.iter().fold(0.0_f64, |m, s| m.max(s.abs())).max(1e-9);
    let pcm: Vec<i16> = samples.iter().map(|s| (0.3 * s / peak * 32767.0) as i16).collect();
    std::fs::write(path, wav_bytes(&pcm))
}

/// A 16 kHz mono 16-bit PCM WAV file holding `pcm`.
pub fn wav_bytes(pcm: &[i16]) -> Vec<u8> {
    let data_len = (pcm.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + pcm.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&(SAMPLE_RATE * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for sample in pcm {
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

/// Free bytes on the file system holding `dir`, from `df` (no unsafe `statvfs` needed).
pub async fn free_bytes(dir: &Path) -> Option<u64> {
    let output = Command::new("df").args(["-P", "-k"]).arg(dir).output().await.ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let kib: u64 = text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_header_describes_16k_mono_pcm() {
        let bytes = wav_bytes(&[0, 1, -1]);
        assert_eq!(bytes.len(), 44 + 6);
        assert_eq!(&bytes[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]), 16_000);
        assert_eq!(u32::from_le_bytes([bytes[40], bytes[41], bytes[42], bytes[43]]), 6);
    }

    fn with_data_length(mut wav: Vec<u8>, length: u32) -> Vec<u8> {
        wav[40..44].copy_from_slice(&length.to_le_bytes());
        wav
    }

    #[test]
    fn only_complete_16k_mono_pcm_wav_skips_the_decoder() {
        let pcm = [7_i16; 1600];
        let wav = wav_bytes(&pcm);
        let usable = |bytes: &[u8]| engine_ready_data_length(bytes, bytes.len() as u64);
        assert_eq!(usable(&wav), Some(3200));

        // A LIST chunk of odd length (padded) before the data, as many encoders write.
        let mut listed = wav[..36].to_vec();
        listed.extend_from_slice(b"LIST\x05\0\0\0INFO!\0");
        listed.extend_from_slice(&wav[36..]);
        assert_eq!(usable(&listed), Some(3200));

        let changed = |offset: usize, value: &[u8]| {
            let mut bytes = wav.clone();
            bytes[offset..offset + value.len()].copy_from_slice(value);
            usable(&bytes)
        };
        assert_eq!(changed(20, &0xFFFE_u16.to_le_bytes()), None, "WAVE_FORMAT_EXTENSIBLE");
        assert_eq!(changed(20, &3_u16.to_le_bytes()), None, "float samples");
        assert_eq!(changed(22, &2_u16.to_le_bytes()), None, "stereo");
        assert_eq!(changed(24, &44_100_u32.to_le_bytes()), None, "44.1 kHz");
        assert_eq!(changed(34, &24_u16.to_le_bytes()), None, "24-bit");
        assert_eq!(changed(8, b"AVI "), None, "not WAVE");

        assert_eq!(usable(&wav[..wav.len() - 2]), None, "cut short");
        assert_eq!(usable(&with_data_length(wav.clone(), u32::MAX)), None, "streamed, no length");
        assert_eq!(usable(&with_data_length(wav[..44].to_vec(), 0)), None, "no samples");
        assert_eq!(usable(&wav[..30]), None, "header cut short");
        let mut data_first = wav.clone();
        data_first[12..16].copy_from_slice(b"junk");
        assert_eq!(usable(&data_first), None, "data before fmt");
    }

    #[tokio::test]
    async fn the_shipped_sample_skips_the_decoder_and_a_44k_copy_does_not() {
        let sample = testkit::workspace_root().join("samples/hello-fleet.wav");
        let seconds = engine_ready_seconds(&sample).await.expect("the sample is 16 kHz mono");
        assert!((seconds - 7.95).abs() < 0.01, "{seconds}");
        let dir = tempfile::tempdir().expect("dir");
        let resampled = dir.path().join("44k.wav");
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&sample)
            .args(["-ar", "44100"])
            .arg(&resampled)
            .status()
            .expect("ffmpeg");
        assert!(status.success());
        assert_eq!(engine_ready_seconds(&resampled).await, None);
    }

    #[tokio::test]
    async fn c17_garbage_fails_probe_with_a_reason() {
        let dir = tempfile::tempdir().expect("dir");
        let junk = dir.path().join("junk.mp3");
        std::fs::write(
            &junk,
            (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect::<Vec<_>>(),
        )
        .expect("write");
        let error = match probe(&junk).await {
            Ok(p) => decode(&junk, &dir.path().join("o.wav")).await.map(|_| p.summary()),
            Err(e) => Err(e),
        };
        assert!(error.is_err(), "garbage decoded: {error:?}");
    }

    #[tokio::test]
    async fn the_self_test_clip_decodes_to_two_seconds() {
        let dir = tempfile::tempdir().expect("dir");
        let clip = dir.path().join("clip.wav");
        write_self_test_clip(&clip).expect("clip");
        let probe = probe(&clip).await.expect("probe");
        assert_eq!(probe.codec, "pcm_s16le");
        let seconds = decode(&clip, &dir.path().join("out.wav")).await.expect("decode");
        assert!((seconds - 2.0).abs() < 0.01, "{seconds}");
        assert!(free_bytes(dir.path()).await.is_some_and(|b| b > 0));
    }
}
