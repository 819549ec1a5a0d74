"""Is there a voice in this clip? A voice-activity check for every clone reference.

A level meter cannot tell speech from a hum, a test tone or hiss: they are all
loud. The clone encoder happily turns any of them into a "voice" that then
speaks noise. So every reference that comes from outside the studio (an
upload, a recording, an import, an API upload) must hold at least
``MIN_SPEECH_SECONDS`` of voiced audio as Silero VAD measures it.

Why Silero VAD: its model (about 2 MB) ships inside the ``silero-vad`` wheel,
so the check runs offline, in demo mode too, and takes about 0.1-0.3 s for a
10 s clip on one CPU core. It runs through onnxruntime (already installed: qwen-tts
imports it), not torch, so saving a voice stays torch-free; the model is
loaded once per process.

Audio the studio made itself (a Voice Design take saved as a voice, kind
"design") is known model output and skips this check, so the demo flow
design → save → clone keeps working with the tiny models' noise-like takes.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from math import gcd
from typing import Any

import numpy as np

from core.audio.clip import Audio
from core.errors import AudioError, InvalidInput

__all__ = ["MIN_SPEECH_SECONDS", "SpeechReport", "measure_speech", "require_speech"]

# Less voiced audio than this carries too little of a voice to clone (and is
# what a cough, a click or a breath measures as).
MIN_SPEECH_SECONDS = 1.0
# Below 3 s of speech a clone works but is noticeably less faithful; the
# studio asks before saving such a voice.
GOOD_SPEECH_SECONDS = 3.0
VAD_SAMPLE_RATE = 16_000  # Silero VAD's native rate
_CACHE_SIZE = 32  # the preview and the generate call measure the same clip

_model: Any = None
_lock = threading.Lock()  # the model keeps recurrent state between windows: one user at a time
_cache: OrderedDict[str, SpeechReport] = OrderedDict()


@dataclass(frozen=True)
class SpeechReport:
    """How much of a clip is speech, and where."""

    speech_s: float
    duration_s: float
    segments: tuple[tuple[float, float], ...]  # (start, end) seconds of each voiced stretch

    @property
    def enough(self) -> bool:
        return self.speech_s >= MIN_SPEECH_SECONDS

    def as_dict(self) -> dict[str, Any]:
        return {
            "speech_s": round(self.speech_s, 2),
            "duration_s": round(self.duration_s, 2),
            "segments": [[round(a, 2), round(b, 2)] for a, b in self.segments],
        }


def measure_speech(audio: Audio) -> SpeechReport:
    """The seconds of speech in ``audio``, as Silero VAD hears them."""
    key = _fingerprint(audio)
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    duration = audio.duration
    x = audio.samples
    if len(x) == 0 or not np.any(x) or not np.isfinite(x).all():
        report = SpeechReport(0.0, duration, ())
    else:
        segments = _vad_segments(_to_vad_rate(audio))
        report = SpeechReport(sum(b - a for a, b in segments), duration, tuple(segments))
    with _lock:
        _cache[key] = report
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return report


def require_speech(audio: Audio, *, saving: bool = False) -> SpeechReport:
    """Refuses a clip with under ``MIN_SPEECH_SECONDS`` of speech, saying what was found.

    ``saving`` words it for the voice library and raises :class:`AudioError`
    (as :func:`core.types.check_reference` does); otherwise it is a clone
    request's :class:`InvalidInput`.
    """
    report = measure_speech(audio)
    if report.enough:
        return report
    error: type[InvalidInput] = AudioError if saving else InvalidInput
    needs = "a saved voice needs" if saving else "cloning needs"
    found = "no speech" if report.speech_s < 0.05 else f"only {report.speech_s:.1f} s of speech"
    raise error(
        f"The reference has {found} in {report.duration_s:.1f} s of audio ({describe_sound(audio)}); "
        f"{needs} at least {MIN_SPEECH_SECONDS:.0f} s of clear speech (3-30 s clones best). "
        "Choose or record a clip of someone talking."
    )


def describe_sound(audio: Audio) -> str:
    """A few words on what a clip without speech most likely is, for the refusal sentence."""
    x = audio.samples.astype(np.float64)
    if len(x) == 0 or not np.any(x):
        return "it is silent"
    if not np.isfinite(x).all():
        return "it holds invalid samples"
    centred = x - x.mean()
    if np.sqrt(np.mean(centred**2)) < 1e-3:
        return "it is silent" if abs(x.mean()) < 1e-3 else "it is a constant DC offset with no sound"
    spectrum = np.abs(np.fft.rfft(centred[: min(len(centred), audio.sample_rate * 10)])) ** 2 + 1e-20
    flatness = float(np.exp(np.mean(np.log(spectrum))) / np.mean(spectrum))
    if flatness > 0.3:
        return "it sounds like noise"
    # A pure tone keeps nearly all its energy in the few FFT bins around one peak.
    peak = int(np.argmax(spectrum))
    width = max(3, len(spectrum) // 2000)
    if spectrum[max(0, peak - width) : peak + width + 1].sum() / spectrum.sum() > 0.8:
        peak_hz = peak * audio.sample_rate / (2 * (len(spectrum) - 1))
        return f"it sounds like a steady {peak_hz:.0f} Hz tone"
    return "no voice was detected; it may be music, a tone or background sound"


def speech_readout(report: SpeechReport) -> str:
    """The readout line for the Clone tab and the library: "Speech 4.2 s of 5.0 s"."""
    text = f"speech {report.speech_s:.1f} s of {report.duration_s:.1f} s"
    if report.speech_s < MIN_SPEECH_SECONDS:
        return f"{text} (too little: at least {MIN_SPEECH_SECONDS:.0f} s needed)"
    if report.speech_s < GOOD_SPEECH_SECONDS:
        return f"{text} (under {GOOD_SPEECH_SECONDS:.0f} s: the clone may be less faithful)"
    return text


# --- internals ---------------------------------------------------------------


def _fingerprint(audio: Audio) -> str:
    digest = hashlib.blake2b(audio.samples.tobytes(), digest_size=16)
    digest.update(str(audio.sample_rate).encode())
    return digest.hexdigest()


def _to_vad_rate(audio: Audio) -> np.ndarray:
    # Polyphase resampling: exact for 24 kHz → 16 kHz (2/3) and free of librosa's
    # numba warm-up, which costs seconds on the first call in a process.
    from scipy.signal import resample_poly

    x = audio.samples.astype(np.float32)
    if audio.sample_rate == VAD_SAMPLE_RATE:
        return x
    g = gcd(VAD_SAMPLE_RATE, audio.sample_rate)
    return resample_poly(x, VAD_SAMPLE_RATE // g, audio.sample_rate // g).astype(np.float32)


def _vad_segments(x16: np.ndarray) -> list[tuple[float, float]]:
    """Voiced stretches, with Silero's own defaults: a frame is speech from
    probability 0.5, speech ends after 100 ms under 0.35, and stretches under
    250 ms (clicks, breaths) are dropped."""
    window, context = 512, 64  # 32 ms frames at 16 kHz, each seeing the 4 ms before it
    padded = np.concatenate([x16, np.zeros(-len(x16) % window, np.float32)])
    with _lock:
        session = _load_model()
        state = np.zeros((2, 1, 128), np.float32)
        before = np.zeros(context, np.float32)
        sr = np.array(VAD_SAMPLE_RATE, dtype=np.int64)
        probs = []
        for i in range(0, len(padded), window):
            chunk = padded[i : i + window]
            out, state = session.run(
                None, {"input": np.concatenate([before, chunk])[None, :], "state": state, "sr": sr}
            )
            before = chunk[-context:]
            probs.append(float(out.reshape(-1)[0]))
    frame_s = window / VAD_SAMPLE_RATE
    min_silence, min_speech = int(0.1 / frame_s + 0.999), 0.25
    segments: list[tuple[float, float]] = []
    start: int | None = None
    quiet = 0
    for i, p in enumerate([*probs, 0.0]):  # a trailing 0 closes a stretch at the end
        if start is None:
            if p >= 0.5:
                start, quiet = i, 0
            continue
        quiet = quiet + 1 if p < 0.35 else 0
        if quiet >= min_silence or i == len(probs):
            end = i - quiet + 1
            if (end - start) * frame_s >= min_speech:
                segments.append((start * frame_s, min(end * frame_s, len(x16) / VAD_SAMPLE_RATE)))
            start = None
    return segments


def _load_model() -> Any:
    """The Silero VAD ONNX model from the silero-vad wheel, run by onnxruntime.

    The file is found without importing the ``silero_vad`` package, whose
    ``__init__`` imports torch: checking a clip before saving a voice keeps the
    library torch-free (tests/core/storage/test_no_torch.py).
    """
    global _model
    if _model is None:
        import importlib.util
        from pathlib import Path

        import onnxruntime

        spec = importlib.util.find_spec("silero_vad")
        folders = list(spec.submodule_search_locations or []) if spec else []
        paths = [Path(f) / "data" / "silero_vad.onnx" for f in folders]
        path = next((p for p in paths if p.is_file()), None)
        if path is None:
            raise AudioError(
                "The speech check's model (silero-vad) is not installed; re-sync the environment: "
                ".venv/bin/python -m pip install -r requirements/studio.lock -e ."
            )
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        _model = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    return _model
