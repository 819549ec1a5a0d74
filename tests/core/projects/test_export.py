"""Exporting a 3-chapter book of real espeak-ng speech: the M4B read back with ffprobe, the chapter
MP3s measured independently (tests/core/projects/loudness_meter.py), subtitles, the zip."""

from __future__ import annotations

import re
import subprocess
import zipfile

import pytest

from core.errors import InvalidInput
from core.projects.export import ExportFormat, export_book, sentence_subtitles, word_subtitles
from core.projects.model import ChapterAudio, MasteringPreset, Sentence, WordTime
from tests.conftest import need, spoken
from tests.core.projects.loudness_meter import ffmpeg_levels, probe

TITLES = ("The Lighthouse", "Storm; at = sea", "Home again")
STAMP = re.compile(r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d) --> (\d\d):(\d\d):(\d\d)[,.](\d\d\d)")


def chapter(n: int, title: str, seconds: float = 3.0) -> ChapterAudio:
    """A chapter of real speech, with words as the QA's ASR reports them (one overlapping the
    next, as Whisper's sometimes do) and two sentences."""
    audio = spoken(seconds, seed=n)
    words = tuple(WordTime(f"word{k}", 0.1 + k * 0.25, 0.1 + k * 0.25 + 0.3) for k in range(int(seconds * 3.5)))
    half = seconds / 2
    sentences = (Sentence(0.0, half, f"Chapter {n + 1} begins here."), Sentence(half, seconds, "And it ends."))
    return ChapterAudio(title, audio, words, sentences)


@pytest.fixture(scope="module")
def cover(tmp_path_factory) -> bytes:
    need("ffmpeg")
    path = tmp_path_factory.mktemp("cover") / "cover.jpg"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "color=c=red:s=64x64", "-frames:v", "1", str(path)],
        check=True,
    )
    return path.read_bytes()


@pytest.fixture(scope="module")
def book(tmp_path_factory, cover):
    chapters = [chapter(n, title) for n, title in enumerate(TITLES)]
    out = tmp_path_factory.mktemp("book")
    result = export_book(chapters, out, title="The Keeper", author="Ada Writer", cover=cover, preset="acx")
    return chapters, result


def stamps(text: str) -> list[tuple[float, float]]:
    def sec(h: str, m: str, s: str, ms: str) -> float:
        return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000

    return [(sec(*g[:4]), sec(*g[4:])) for g in STAMP.findall(text)]


def test_m4b_has_chapter_markers_title_author_and_cover(book, cover):
    _, result = book
    data = probe(result.files["m4b"])
    chapters = data["chapters"]
    assert [c["tags"]["title"] for c in chapters] == list(TITLES)
    starts = [float(c["start_time"]) for c in chapters]
    ends = [float(c["end_time"]) for c in chapters]
    assert starts[0] == 0.0 and starts == sorted(starts) and len(set(starts)) == 3
    assert starts[1:] == pytest.approx(ends[:-1], abs=0.002)
    assert ends[-1] == pytest.approx(float(data["format"]["duration"]), abs=0.1)
    # Each marker starts where its chapter file's audio does: the chapter MP3s' lengths add up.
    lengths = [float(probe(result.files[f"chapter-0{n}.mp3"])["format"]["duration"]) for n in (1, 2, 3)]
    assert ends[0] - starts[0] == pytest.approx(lengths[0], abs=0.1)

    tags = data["format"]["tags"]
    assert tags["title"] == "The Keeper"
    assert tags["artist"] == "Ada Writer" and tags["album_artist"] == "Ada Writer"
    audio = [s for s in data["streams"] if s["codec_type"] == "audio"]
    pictures = [s for s in data["streams"] if s.get("disposition", {}).get("attached_pic") == 1]
    assert audio and audio[0]["codec_name"] == "aac"
    assert len(pictures) == 1 and pictures[0]["codec_name"] == "mjpeg"
    assert pictures[0]["width"] == 64

    from mutagen.mp4 import MP4

    assert bytes(MP4(result.files["m4b"]).tags["covr"][0]) == cover


def test_chapter_mp3s_meet_acx_by_an_independent_measure(book):
    _, result = book
    assert [title for title, _ in result.compliance] == list(TITLES)
    for n, (title, report) in enumerate(result.compliance, start=1):
        assert report.passed, f"{title}: {report.summary}"
        path = result.files[f"chapter-0{n}.mp3"]
        heard = ffmpeg_levels(path)
        assert -23.0 <= heard["rms"] <= -18.0, title
        assert heard["peak"] <= -3.0, title
        assert 0.5 <= heard["head"] <= 1.0 and 1.0 <= heard["tail"] <= 5.0, title
        stream = probe(path)["streams"][0]
        assert (stream["codec_name"], int(stream["sample_rate"]), stream["channels"]) == ("mp3", 44_100, 1)
        assert int(stream["bit_rate"]) == 192_000
    assert result.passed
    data = result.as_dict()
    assert data["compliance"][0]["chapter"] == TITLES[0] and data["compliance"][0]["passed"] is True
    assert {r["source"] for r in data["compliance"][0]["rules"]} == {"ACX Audio Submission Requirements"}


def test_mp3_tags_and_cover(book, cover):
    from mutagen.id3 import ID3

    _, result = book
    tags = ID3(result.files["chapter-02.mp3"])
    assert str(tags["TIT2"]) == TITLES[1]
    assert str(tags["TALB"]) == "The Keeper" and str(tags["TPE1"]) == "Ada Writer"
    assert str(tags["TRCK"]) == "2/3"
    assert tags.getall("APIC")[0].data == cover


def test_word_subtitles_are_monotonic_and_inside_their_chapter(book):
    chapters, result = book
    for n, source in enumerate(chapters, start=1):
        length = float(probe(result.files[f"chapter-0{n}.mp3"])["format"]["duration"])
        for fmt in ("srt", "vtt"):
            text = result.files[f"chapter-0{n}.words.{fmt}"].read_text(encoding="utf-8")
            times = stamps(text)
            assert len(times) == len(source.words)
            assert all(start < end for start, end in times)
            assert all(b[0] >= a[1] for a, b in zip(times, times[1:], strict=False)), "cues overlap or go back"
            assert times[0][0] > 0.0 and times[-1][1] <= length + 0.001
            assert "word0" in text and "word5" in text
        # Shifted with the audio: the first word sits after the head's room tone, as the speech does.
        first = stamps(result.files[f"chapter-0{n}.words.srt"].read_text(encoding="utf-8"))[0][0]
        assert first > 0.4
    vtt = result.files["chapter-01.words.vtt"].read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT\n")


def test_sentence_subtitles_follow_the_blocks(book):
    _, result = book
    srt = result.files["chapter-01.srt"].read_text(encoding="utf-8")
    assert "Chapter 1 begins here." in srt and "And it ends." in srt
    times = stamps(srt)
    assert len(times) == 2 and times[0][1] <= times[1][0]
    assert result.files["chapter-03.vtt"].read_text(encoding="utf-8").startswith("WEBVTT")


def test_zip_holds_the_chapter_files_and_subtitles(book):
    _, result = book
    with zipfile.ZipFile(result.files["zip"]) as archive:
        names = set(archive.namelist())
    expected = {path.name for key, path in result.files.items() if key not in ("m4b", "zip")}
    assert names == expected
    assert "01-the-lighthouse.mp3" in names and "02-storm-at-sea.words.vtt" in names


def test_m4b_only_export_measures_each_chapter_inside_the_m4b(tmp_path):
    chapters = [chapter(n, title, seconds=2.0) for n, title in enumerate(TITLES[:2])]
    result = export_book(chapters, tmp_path, title="Short", preset=MasteringPreset.BROADCAST, formats=["m4b"])
    assert set(result.files) == {"m4b"}
    assert [t for t, _ in result.compliance] == list(TITLES[:2])
    for _, report in result.compliance:
        loudness = next(r for r in report.rules if r.rule.startswith("Integrated loudness"))
        assert loudness.measured == pytest.approx(-23.0, abs=0.5), report.summary
    assert ffmpeg_levels(result.files["m4b"])["lufs"] == pytest.approx(-23.0, abs=0.5)


def test_word_subtitles_untangle_overlapping_words():
    words = [WordTime("b", 1.0, 1.6), WordTime("a", 0.2, 1.2), WordTime("c", 1.5, 1.5), WordTime(" ", 2, 3)]
    times = stamps(word_subtitles(words, "srt"))
    assert [tuple(round(v, 3) for v in t) for t in times] == [(0.2, 1.2), (1.2, 1.6), (1.6, 1.61)]
    assert word_subtitles([], "vtt") == "WEBVTT\n\n"
    long = "This sentence is long enough that it has to be cut into more than one cue, " * 2
    cues = stamps(sentence_subtitles([Sentence(0.0, 10.0, long)], "srt"))
    assert len(cues) >= 2 and cues[-1][1] == 10.0


def test_bad_requests_are_refused_and_write_nothing(tmp_path):
    one = [chapter(0, "One", seconds=1.0)]
    with pytest.raises(InvalidInput, match="JPEG or PNG"):
        export_book(one, tmp_path / "a", title="T", cover=b"GIF89a not a cover")
    with pytest.raises(InvalidInput, match="Unknown export format 'flac'"):
        export_book(one, tmp_path / "b", title="T", formats=["m4b", "flac"])
    with pytest.raises(InvalidInput, match="render at least one chapter"):
        export_book([], tmp_path / "c", title="T")
    with pytest.raises(InvalidInput, match="title"):
        export_book(one, tmp_path / "d", title="  ")
    assert not any((tmp_path / d).exists() for d in "abcd")
    assert ExportFormat.from_user(".WebVTT") is ExportFormat.VTT
