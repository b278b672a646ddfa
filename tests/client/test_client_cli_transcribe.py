"""`sonaray transcribe` against a fake server: where outputs go, skipping, stdin/stdout,
subtitle layout and exit codes."""

from __future__ import annotations

import json

import httpx
import pytest
from client_fixtures import TRANSCRIPTION, FakeServer, form_fields
from sonaray_client import Transcription, encode_wav
from sonaray_client.cli import CliState, app
from typer.testing import CliRunner

WAV = encode_wav([0.0, 0.1, -0.1], 16000)
WORDS = [
    [("Hello", 0.0, 0.5), ("there.", 0.6, 1.5)],
    [("General", 1.6, 2.2), ("Kenobi.", 2.3, 3.2)],
]
WITH_WORDS = {
    **TRANSCRIPTION,
    "segments": [
        {**seg, "words": [{"word": w, "start": a, "end": b} for w, a, b in words]}
        for seg, words in zip(TRANSCRIPTION["segments"], WORDS, strict=True)
    ],
}
runner = CliRunner()


def server_answering(body: dict = TRANSCRIPTION) -> FakeServer:
    return FakeServer().reply("POST", "/v1/seq2seq", httpx.Response(200, json=body))


def invoke(server: FakeServer, *args: str, stdin: bytes | None = None):
    return runner.invoke(app, list(args), obj=CliState(transport=server.transport), input=stdin)


@pytest.fixture
def recordings(tmp_path):
    """Two clips, one in a subfolder."""
    folder = tmp_path / "recordings"
    (folder / "day2").mkdir(parents=True)
    for name in ("a.wav", "day2/b.flac"):
        (folder / name).write_bytes(WAV)
    return folder


def test_output_dir_mirrors_the_folders_and_all_writes_every_format(recordings, tmp_path):
    out = tmp_path / "out"
    result = invoke(server_answering(), "transcribe", str(recordings), "-f", "all", "-d", str(out))

    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == [
        f"{stem}.{ext}" for stem in ("a", "day2/b") for ext in ("json", "srt", "tsv", "txt", "vtt")
    ]
    assert (out / "a.tsv").read_text() == (
        "start\tend\ttext\n0\t1500\tHello there.\n1500\t3200\tGeneral Kenobi.\n"
    )
    # all's JSON is the whole transcription, as whisper's is.
    full = Transcription.model_validate_json((out / "day2" / "b.json").read_text())
    assert full == Transcription.model_validate(TRANSCRIPTION)
    assert not list(recordings.rglob("*.txt")), "nothing lands beside the inputs"


def test_existing_outputs_are_skipped_and_overwrite_redoes_them(recordings, tmp_path):
    out = tmp_path / "subs"
    args = ("transcribe", str(recordings), "-f", "srt", "-d", str(out))
    assert invoke(server_answering(), *args).exit_code == 0
    (out / "a.srt").write_text("edited by hand\n")

    again = server_answering()
    skipped = invoke(again, *args)
    assert skipped.exit_code == 0, skipped.output
    assert again.requests == []
    assert "skipped 2 with outputs already there (--overwrite redoes them)" in skipped.stderr
    assert (out / "a.srt").read_text() == "edited by hand\n"

    redo = server_answering()
    assert invoke(redo, *args, "--overwrite").exit_code == 0
    assert len(redo.requests) == 2
    assert (out / "a.srt").read_text().startswith("1\n00:00:00,000 --> 00:00:01,500\nHello")


def test_only_the_missing_outputs_of_an_input_are_redone(recordings, tmp_path):
    out = tmp_path / "out"
    invoke(server_answering(), "transcribe", str(recordings / "a.wav"), "-f", "srt", "-d", str(out))
    server = server_answering()
    result = invoke(server, "transcribe", str(recordings / "a.wav"), "-f", "all", "-d", str(out))
    assert result.exit_code == 0, result.output
    assert len(server.requests) == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.srt", "a.tsv", "a.txt", "a.vtt"]
    assert str(out / "a.srt") not in result.stdout, "the existing srt is kept"


def test_audio_from_stdin_prints_json_to_stdout(tmp_path):
    server = server_answering()
    result = invoke(server, "transcribe", "-", "-f", "json", stdin=WAV)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"text": TRANSCRIPTION["text"]}
    assert form_fields(server.requests[0])["file"] == ("audio", WAV, "audio/wav")


def test_dash_o_prints_every_transcript_in_input_order(tmp_path):
    texts = {"1.wav": "one", "2.wav": "two", "3.wav": "three"}
    for name in texts:
        (tmp_path / name).write_bytes(WAV)

    def answer(request: httpx.Request) -> httpx.Response:
        text = texts[form_fields(request)["file"][0]]
        return httpx.Response(200, json={"text": text, "duration": 1.0})

    server = FakeServer().reply("POST", "/v1/seq2seq", answer)
    paths = [str(tmp_path / name) for name in texts]
    result = invoke(server, "transcribe", *paths, "-o", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout == "one\ntwo\nthree\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(texts), "no files written"


def test_decoding_options_reach_the_server(tmp_path):
    clip = tmp_path / "a.wav"
    clip.write_bytes(WAV)
    server = server_answering()
    args = ["--prompt", "Kenobi", "--temperature", "0.2", "--beam-size", "1", "--translate"]
    result = invoke(server, "transcribe", str(clip), "--language", "de", *args)
    assert result.exit_code == 0, result.output
    assert json.loads(form_fields(server.requests[0])["options"]) == {
        "task": "translate",
        "language": "de",
        "prompt": "Kenobi",
        "temperature": 0.2,
        "num_beams": 1,
    }


def test_line_limits_ask_for_word_timestamps_and_split_the_cues(tmp_path):
    clip = tmp_path / "a.wav"
    clip.write_bytes(WAV)
    server = server_answering(WITH_WORDS)
    limits = ["--max-line-width", "8", "--max-line-count", "1"]
    result = invoke(server, "transcribe", str(clip), "-f", "vtt", *limits)
    assert result.exit_code == 0, result.output
    assert json.loads(form_fields(server.requests[0])["options"]) == {"timestamps": "word"}
    assert (tmp_path / "a.vtt").read_text() == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:00.500\nHello\n\n"
        "00:00:00.600 --> 00:00:01.500\nthere.\n\n"
        "00:00:01.600 --> 00:00:02.200\nGeneral\n\n"
        "00:00:02.300 --> 00:00:03.200\nKenobi.\n"
    )


def test_unreachable_server_exits_3_for_every_file(recordings):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    state = CliState(transport=httpx.MockTransport(refuse))
    result = runner.invoke(app, ["transcribe", str(recordings)], obj=state)
    assert result.exit_code == 3
    assert result.stderr.count("(is the server running?)") == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "one.srt", "-f", "srt"], "-o FILE takes one input and one format"),
        (["-f", "all", "-o", "-"], "--format all writes several files"),
        (["--temperature", "3"], "invalid option temperature"),
    ],
)
def test_usage_errors_exit_2_before_anything_is_sent(recordings, args, message):
    server = server_answering()
    result = invoke(server, "transcribe", str(recordings), *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert server.requests == []
