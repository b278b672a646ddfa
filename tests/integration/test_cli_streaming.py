"""The CLI's streaming commands against the live cluster: `transcribe --stream`,
`listen` (a file through a realtime session) and `speak -o -`."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import soundfile as sf
from sonaray_client import Sonaray
from sonaray_client.cli import app
from speech import SENTENCES, heard_as, same_samples, synthesize, words
from typer.testing import CliRunner

pytestmark = pytest.mark.serve
runner = CliRunner()
TURN_LINE = re.compile(r"^\[(\d\d):(\d\d\.\d) - (\d\d):(\d\d\.\d)\] (.+)$")


def pause(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 16000), np.float32)


def sonaray(serve_url: str, *args: str):
    return runner.invoke(app, ["--base-url", serve_url, *args])


@pytest.fixture
def two_turns(tmp_path):
    """A 16 kHz WAV: a pause, a sentence, a pause, another sentence, a short pause."""
    audio = np.concatenate(
        [pause(1.0), synthesize(SENTENCES[2]), pause(1.5), synthesize(SENTENCES[4]), pause(1.0)]
    )
    path = tmp_path / "call.wav"
    sf.write(path, audio, 16000, subtype="PCM_16")
    return path


def seconds(minutes: str, secs: str) -> float:
    return int(minutes) * 60 + float(secs)


def test_transcribe_stream_prints_the_text(serve_url, two_turns):
    result = sonaray(serve_url, "transcribe", "--stream", str(two_turns))
    assert result.exit_code == 0, result.output
    assert words(result.stdout) == words(SENTENCES[2] + " " + SENTENCES[4])


def test_transcribe_stream_takes_one_input(serve_url, two_turns):
    result = sonaray(serve_url, "transcribe", "--stream", str(two_turns), str(two_turns))
    assert result.exit_code == 2 and "one file" in result.output


@pytest.mark.parametrize("speed", ["1", "0"])
def test_listen_prints_each_turn_with_its_times(serve_url, two_turns, speed):
    result = sonaray(serve_url, "listen", str(two_turns), "--speed", speed)
    assert result.exit_code == 0, result.output
    turns = [TURN_LINE.match(line) for line in result.stdout.splitlines()]
    assert all(turns) and len(turns) == 2, result.stdout
    assert [words(t[5]) for t in turns] == [words(SENTENCES[2]), words(SENTENCES[4])]
    first_start, first_end = seconds(*turns[0].groups()[:2]), seconds(*turns[0].groups()[2:4])
    second_start = seconds(*turns[1].groups()[:2])
    assert 0.5 <= first_start <= 1.0  # speech begins at 1.0 s, less the prefix padding
    assert first_start < first_end < second_start


def test_speak_to_stdout_streams_playable_audio(serve_url):
    text = " ".join(SENTENCES[:3])
    pcm = sonaray(serve_url, "speak", text, "-o", "-", "-f", "pcm")
    wav = sonaray(serve_url, "speak", text, "-o", "-")
    assert pcm.exit_code == 0 and wav.exit_code == 0
    audio, rate = sf.read(io.BytesIO(wav.stdout_bytes), dtype="int16")
    assert rate == 22050
    assert same_samples(audio, np.frombuffer(pcm.stdout_bytes, "<i2"))
    with Sonaray(base_url=serve_url) as client:
        assert heard_as(client.transcribe((audio, rate)).text, text)
