"""The speech check: real espeak-ng speech passes; silence, DC, a tone, noise and music are refused."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio.clip import Audio
from core.audio.io import load_audio
from core.audio.reference import prepare_reference
from core.audio.speech_check import MIN_SPEECH_SECONDS, measure_speech, require_speech
from core.errors import AudioError, InvalidInput
from core.storage.library import VoiceLibrary

SR = 24_000


def signal(kind: str, seconds: float = 5.0) -> Audio:
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(0)
    wave = {
        "silence": np.zeros_like(t),
        "dc": np.full_like(t, 0.5),
        "tone": 0.5 * np.sin(2 * np.pi * 440 * t),
        "noise": rng.uniform(-0.5, 0.5, t.size),
        # a C major chord switched on and off twice a second
        "music": sum(0.2 * np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) * (np.sin(2 * np.pi * 2 * t) > 0),
    }[kind]
    return Audio(wave.astype(np.float32), SR)


REFUSALS = {
    "silence": "it is silent",
    "dc": "constant DC offset",
    "tone": "steady 440 Hz tone",
    "noise": "sounds like noise",
    "music": "no voice was detected",
}


def test_real_speech_is_measured_and_accepted(speech_wav):
    audio = load_audio(speech_wav)
    report = require_speech(audio)
    # espeak's ~5 s sentence is nearly all voiced; the VAD must find most of it.
    assert 0.7 * audio.duration < report.speech_s <= audio.duration
    assert report.segments and all(0 <= a < b <= audio.duration + 0.05 for a, b in report.segments)


@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_clips_without_speech_are_refused_with_a_sentence(kind):
    audio = signal(kind)
    assert measure_speech(audio).speech_s < MIN_SPEECH_SECONDS
    with pytest.raises(InvalidInput) as clone_error:
        require_speech(audio)
    message = str(clone_error.value)
    assert "no speech in 5.0 s of audio" in message and REFUSALS[kind] in message
    assert "cloning needs at least 1 s of clear speech" in message
    with pytest.raises(AudioError, match="a saved voice needs at least 1 s"):
        require_speech(audio, saving=True)


def test_under_a_second_of_speech_is_refused(speech_wav):
    audio = load_audio(speech_wav)
    short = Audio(np.concatenate([audio.samples[: int(0.6 * SR)], np.zeros(3 * SR, np.float32)]), SR)
    with pytest.raises(InvalidInput, match=r"only 0\.\d s of speech in 3\.6 s"):
        require_speech(short)


def test_the_readout_reports_speech_seconds(speech_wav):
    prepared = prepare_reference(str(speech_wav))
    assert prepared.report.speech_s is not None and prepared.report.speech_s > 3.0
    silent = prepare_reference(
        (np.zeros(3 * SR, np.float32), SR),
    )
    assert silent.report.speech_s == 0.0
    assert any("too little" in w for w in silent.report.warnings)


@pytest.mark.parametrize("kind", ["silence", "dc", "tone", "noise"])
def test_the_library_saves_nothing_without_speech(tmp_path, kind):
    library = VoiceLibrary(tmp_path / "voices")
    with pytest.raises(AudioError, match="no speech|completely silent"):
        library.save(name="Bad", kind="clone", reference=signal(kind), transcript="Hi.")
    assert library.list() == []
    assert [p for p in (tmp_path / "voices").rglob("*") if p.suffix == ".wav"] == []


def test_a_design_voice_is_studio_output_and_skips_the_check(tmp_path, speech_wav):
    library = VoiceLibrary(tmp_path / "voices")
    voice = library.save(name="Designed", kind="design", reference=signal("noise"), transcript="Hi.")
    assert library.get(voice.id).kind == "design"
    # but replacing its clip with an outside one is checked
    with pytest.raises(AudioError, match="no speech"):
        library.update(voice, reference=signal("tone"))
    library.update(voice, reference=load_audio(speech_wav))


def test_voices_saved_before_the_check_still_load(tmp_path, speech_wav):
    from core.audio.io import encode
    from core.storage.library.records import read_reference

    library = VoiceLibrary(tmp_path / "voices")
    voice = library.save(name="Old", kind="clone", reference=load_audio(speech_wav), transcript="Hi.")
    # A voice saved by an older studio with a clip that would fail today.
    voice.reference_path.write_bytes(encode(signal("tone", 2.0), "wav"))
    assert [v.name for v in library.list()] == ["Old"]
    assert len(read_reference(library.get("Old"))) > 0
