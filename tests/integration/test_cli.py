"""The `sonaray` CLI against the live cluster: a folder of recordings to subtitles in
another folder, every format, stdin and stdout, skipping, and exit codes."""

from __future__ import annotations

import io
import json

import pytest
import soundfile as sf
from sonaray_client import Transcription
from sonaray_client.cli import app
from speech import SENTENCES, synthesize, words
from typer.testing import CliRunner

pytestmark = pytest.mark.serve
runner = CliRunner()


def sonaray(serve_url: str, *args: str, stdin: bytes | str | None = None):
    return runner.invoke(app, ["--base-url", serve_url, *args], input=stdin)


def wav_bytes(sentence: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, synthesize(sentence), 16000, format="WAV")
    return buffer.getvalue()


@pytest.fixture
def recordings(tmp_path):
    """Two spoken sentences, one in a subfolder, as a user's recordings would be."""
    folder = tmp_path / "recordings"
    (folder / "monday").mkdir(parents=True)
    (folder / "intro.wav").write_bytes(wav_bytes(SENTENCES[0]))
    (folder / "monday" / "call.wav").write_bytes(wav_bytes(SENTENCES[2]))
    return folder


def srt_cues(text: str) -> list[list[str]]:
    """The text lines of each SubRip cue."""
    return [block.splitlines()[2:] for block in text.strip().split("\n\n")]


def test_a_folder_becomes_line_limited_srt_then_skips_then_overwrites(
    serve_url, recordings, tmp_path
):
    subs = tmp_path / "subs"
    args = ("transcribe", str(recordings), "-f", "srt", "--output-dir", str(subs))
    limits = ("--max-line-width", "24", "--max-line-count", "1")

    first = sonaray(serve_url, *args, *limits)
    assert first.exit_code == 0, first.output
    for name, sentence in (("intro.srt", SENTENCES[0]), ("monday/call.srt", SENTENCES[2])):
        cues = srt_cues((subs / name).read_text())
        assert len(cues) > 1, "a long sentence is split over several cues"
        assert all(len(lines) == 1 and len(lines[0]) <= 24 for lines in cues)
        assert words(" ".join(line for lines in cues for line in lines)) == words(sentence)

    (subs / "intro.srt").write_text("kept\n")
    again = sonaray(serve_url, *args, *limits)
    assert again.exit_code == 0, again.output
    assert "skipped 2 with outputs already there" in again.stderr
    assert (subs / "intro.srt").read_text() == "kept\n"

    redo = sonaray(serve_url, *args, *limits, "--overwrite")
    assert redo.exit_code == 0, redo.output
    assert words((subs / "intro.srt").read_text()) != ["kept"]
    assert str(subs / "intro.srt") in redo.stdout


def test_every_format_is_written(serve_url, recordings, tmp_path):
    out = tmp_path / "out"
    clip = recordings / "intro.wav"
    result = sonaray(serve_url, "transcribe", str(clip), "-f", "all", "-d", str(out))
    assert result.exit_code == 0, result.output

    assert words((out / "intro.txt").read_text()) == words(SENTENCES[0])
    assert (out / "intro.vtt").read_text().startswith("WEBVTT\n\n00:00:0")
    assert (out / "intro.srt").read_text().startswith("1\n00:00:0")
    assert (out / "intro.tsv").read_text().startswith("start\tend\ttext\n")
    full = Transcription.model_validate_json((out / "intro.json").read_text())
    assert full.language == "en" and full.segments
    json_only = sonaray(serve_url, "transcribe", str(clip), "-f", "json", "-o", "-")
    assert words(json.loads(json_only.stdout)["text"]) == words(SENTENCES[0])


def test_stdin_audio_prints_json(serve_url):
    result = sonaray(serve_url, "transcribe", "-", "-f", "json", stdin=wav_bytes(SENTENCES[1]))
    assert result.exit_code == 0, result.output
    assert words(json.loads(result.stdout)["text"]) == words(SENTENCES[1])


def test_word_cues_have_one_word_each(serve_url, recordings):
    args = ["--word-timestamps", "--max-words-per-line", "1", "--max-line-count", "1"]
    result = sonaray(
        serve_url, "transcribe", str(recordings / "intro.wav"), "-f", "srt", "-o", "-", *args
    )
    assert result.exit_code == 0, result.output
    cues = srt_cues(result.stdout)
    assert [words(lines[0]) for lines in cues] == [[w] for w in words(SENTENCES[0])]


def test_one_bad_file_among_good_ones_exits_1_and_the_rest_are_written(serve_url, recordings):
    (recordings / "broken.wav").write_bytes(b"RIFF this is not audio at all")
    result = sonaray(serve_url, "transcribe", str(recordings))
    assert result.exit_code == 1
    assert (recordings / "intro.txt").exists() and (recordings / "monday" / "call.txt").exists()
    assert not (recordings / "broken.txt").exists()
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "broken.wav: 4" in failed[0] and "request id" in failed[0]


def test_an_unreachable_server_exits_3(recordings):
    result = runner.invoke(
        app, ["--base-url", "http://127.0.0.1:9", "transcribe", str(recordings / "intro.wav")]
    )
    assert result.exit_code == 3
    assert "is the server running?" in result.stderr


def test_speak_generate_and_pipeline(serve_url, tmp_path):
    hello = tmp_path / "hello.flac"
    spoken = sonaray(serve_url, "speak", "-o", str(hello), "--seed", "1", stdin="Hello there.")
    assert spoken.exit_code == 0, spoken.output
    assert sf.info(hello).format == "FLAC"

    music = tmp_path / "rain.wav"
    made = sonaray(
        serve_url, "generate", "soft rain", "-o", str(music), "--duration", "0.5", "--seed", "1"
    )
    assert made.exit_code == 0, made.output
    assert sf.info(music).duration == pytest.approx(0.5, abs=0.05)

    clip = tmp_path / "in.wav"
    clip.write_bytes(wav_bytes(SENTENCES[5]))
    ran = sonaray(serve_url, "pipeline", "transcribe-long", str(clip), "-s", "frames.threshold=0.5")
    assert ran.exit_code == 0, ran.output
    shown = json.loads(ran.stdout)
    assert [s["task"] for s in shown["steps"]] == ["frames", "seq2seq"]
    assert words(shown["transcription"]["text"]) == words(SENTENCES[5])
