"""The `sonaray` CLI end to end against a fake server: files written, tables shown, exit codes."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys

import httpx
import pytest
from client_fixtures import TRANSCRIPTION, FakeServer, error_response, form_fields, json_body
from sonaray_client import Transcription, cli, encode_wav
from sonaray_client.cli import CliState, app
from typer.testing import CliRunner

WAV = encode_wav([0.0, 0.1, -0.1], 16000)
runner = CliRunner()


def invoke(server: FakeServer, *args: str):
    return runner.invoke(app, list(args), obj=CliState(transport=server.transport))


@pytest.fixture
def folder(tmp_path):
    """Three clips (one in a subfolder) and a note that is not audio."""
    (tmp_path / "sub").mkdir()
    for name in ("a.wav", "b.WAV", "sub/c.wav"):
        (tmp_path / name).write_bytes(WAV)
    (tmp_path / "notes.txt").write_text("not audio")
    return tmp_path


def transcription_server() -> FakeServer:
    return FakeServer().reply("POST", "/v1/seq2seq", httpx.Response(200, json=TRANSCRIPTION))


def test_transcribe_folder_writes_srt_beside_each_clip(folder):
    server = transcription_server()
    result = invoke(server, "transcribe", str(folder), "--format", "srt", "--language", "en")

    assert result.exit_code == 0, result.output
    outputs = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.srt"))
    assert outputs == ["a.srt", "b.srt", "sub/c.srt"]
    assert (folder / "a.srt").read_text() == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n"
        "2\n00:00:01,500 --> 00:00:03,200\nGeneral Kenobi.\n"
    )
    assert len(server.requests) == 3, "notes.txt is not sent"
    sent = {form_fields(r)["file"][0] for r in server.requests}
    assert sent == {"a.wav", "b.WAV", "c.wav"}
    # Only what was asked is sent: the server's defaults apply to the rest.
    assert json.loads(form_fields(server.requests[0])["options"]) == {"language": "en"}
    assert str(folder / "sub" / "c.srt") in result.stdout


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("vtt", "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there.\n"),
        ("txt", "Hello there. General Kenobi.\n"),
    ],
)
def test_transcribe_formats(tmp_path, fmt, expected):
    clip = tmp_path / "talk.flac"
    clip.write_bytes(WAV)
    result = invoke(transcription_server(), "transcribe", str(clip), "-f", fmt)
    assert result.exit_code == 0, result.output
    assert (tmp_path / f"talk.{fmt}").read_text().startswith(expected)


def test_transcribe_json_round_trips_and_ctc_engine_is_used(tmp_path):
    clip = tmp_path / "talk.wav"
    clip.write_bytes(WAV)
    server = FakeServer().reply("POST", "/v1/ctc", httpx.Response(200, json=TRANSCRIPTION))
    result = invoke(server, "transcribe", str(clip), "-f", "verbose_json", "--engine", "ctc")
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "talk.json").read_text())
    assert written["segments"][1]["text"] == " General Kenobi."
    assert Transcription.model_validate(written) == Transcription.model_validate(TRANSCRIPTION)


def test_one_failing_file_is_reported_and_the_rest_still_written(folder):
    def answer(request: httpx.Request) -> httpx.Response:
        if form_fields(request)["file"][0] == "b.WAV":
            return error_response(415, "cannot decode audio", code="unsupported_media_type")
        return httpx.Response(200, json=TRANSCRIPTION)

    server = FakeServer().reply("POST", "/v1/seq2seq", answer)
    result = invoke(server, "transcribe", str(folder))

    assert result.exit_code == 1
    assert (folder / "a.txt").exists() and (folder / "sub" / "c.txt").exists()
    assert not (folder / "b.txt").exists()
    assert "b.WAV: 415 cannot decode audio (request id req-1)" in result.stderr


def test_transcribe_keeps_at_most_concurrency_requests_in_flight(tmp_path):
    for i in range(6):
        (tmp_path / f"{i}.wav").write_bytes(WAV)
    in_flight = peak = 0

    async def slow_ok(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json=TRANSCRIPTION)

    state = CliState(transport=httpx.MockTransport(slow_ok))
    result = runner.invoke(app, ["transcribe", str(tmp_path), "--concurrency", "2"], obj=state)
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("*.txt"))) == 6
    assert peak == 2


def test_missing_input_is_a_usage_error_and_nothing_is_sent(tmp_path):
    server = transcription_server()
    result = invoke(server, "transcribe", str(tmp_path / "missing.wav"))
    assert result.exit_code == 2
    assert result.stderr == f"error: no such file or folder: {tmp_path / 'missing.wav'}\n"
    assert server.requests == []


def test_folder_without_audio_is_a_usage_error(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    result = invoke(transcription_server(), "transcribe", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == "error: no audio files found\n"


def test_speak_writes_the_audio_in_the_suffixes_format(tmp_path):
    server = FakeServer().reply("POST", "/v1/tts", httpx.Response(200, content=b"fLaC-bytes"))
    out = tmp_path / "hello.flac"
    result = invoke(server, "speak", "Hello.", "-o", str(out), "--voice", "joe")
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == b"fLaC-bytes"
    assert json_body(server.requests[0]) == {
        "input": "Hello.",
        "voice": "joe",
        "response_format": "flac",
    }


def test_speak_with_an_out_of_range_speed_prints_one_line(tmp_path):
    result = invoke(FakeServer(), "speak", "Hi.", "-o", str(tmp_path / "a.wav"), "--speed", "9")
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == "error: invalid option speed: Input should be less than or equal to 4"
    )


def test_classify_prints_labels(tmp_path):
    clip = tmp_path / "dog.wav"
    clip.write_bytes(WAV)
    labels = {"labels": [{"label": "Dog", "score": 0.875}, {"label": "Cat", "score": 0.1}]}
    server = FakeServer().reply("POST", "/v1/classify", httpx.Response(200, json=labels))
    result = invoke(server, "classify", str(clip), "--top-k", "2")
    assert result.exit_code == 0, result.output
    assert "Dog" in result.stdout and "0.875" in result.stdout
    assert json.loads(form_fields(server.requests[0])["options"]) == {"top_k": 2}


def test_server_error_is_one_clear_line_and_exit_1(tmp_path):
    clip = tmp_path / "dog.wav"
    clip.write_bytes(WAV)
    missing = error_response(404, "model 'nope' not found", code="model_not_found")
    server = FakeServer().reply("POST", "/v1/classify", missing)
    result = invoke(server, "classify", str(clip), "--model", "nope")
    assert result.exit_code == 1
    assert result.stderr == "error: 404 model 'nope' not found (request id req-1)\n"


def test_pipeline_prints_json_and_writes_audio(tmp_path):
    clip = tmp_path / "in.wav"
    clip.write_bytes(WAV)
    answer = {
        "pipeline": "speech-to-speech",
        "steps": [{"step": "tts", "task": "tts", "model": "piper", "seconds": 0.2}],
        "transcription": TRANSCRIPTION,
        "audio_base64": base64.b64encode(WAV).decode(),
    }
    server = FakeServer().reply(
        "POST", "/v1/pipelines/speech-to-speech", httpx.Response(200, json=answer)
    )
    out = tmp_path / "out.wav"
    options = '{"tts": {"voice": "joe"}}'
    result = invoke(
        server, "pipeline", "speech-to-speech", str(clip), "--options", options, "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == WAV
    shown = json.loads(result.stdout)
    assert shown["transcription"]["text"] == TRANSCRIPTION["text"]
    assert "audio_base64" not in shown
    assert json.loads(form_fields(server.requests[0])["options"]) == {"tts": {"voice": "joe"}}


def test_models_lists_the_clusters_models():
    cards = {
        "data": [
            {"id": "whisper-tiny", "task": "seq2seq", "default": True, "sampling_rate": 16000},
            {"id": "piper-joe", "task": "tts"},
        ]
    }
    server = FakeServer().reply("GET", "/v1/models", httpx.Response(200, json=cards))
    result = invoke(server, "models")
    assert result.exit_code == 0, result.output
    assert "whisper-tiny" in result.stdout and "piper-joe" in result.stdout
    assert "16000" in result.stdout


def test_global_options_reach_the_request():
    server = FakeServer().reply("GET", "/healthz", httpx.Response(200, json={"status": "ok"}))
    result = invoke(server, "--base-url", "http://cluster:8000/", "--api-key", "sk-1", "health")
    assert result.exit_code == 0, result.output
    assert "http://cluster:8000: ok" in result.stdout
    request = server.requests[0]
    assert str(request.url) == "http://cluster:8000/healthz"
    assert request.headers["authorization"] == "Bearer sk-1"


def test_unhealthy_server_exits_3():
    answer = httpx.Response(200, json={"status": "starting"})
    result = invoke(FakeServer().reply("GET", "/healthz", answer), "health")
    assert result.exit_code == 3


def test_broken_plugin_warns_and_the_cli_keeps_working(monkeypatch, capsys):
    class BrokenEntryPoint:
        name = "k8s"

        def load(self):
            raise ImportError("No module named 'kubernetes'")

    monkeypatch.setattr(cli, "entry_points", lambda group: [BrokenEntryPoint()])
    cli._add_plugins()
    assert "plugin 'k8s' failed: No module named 'kubernetes'" in capsys.readouterr().err


def test_installed_server_plugin_merges_into_models():
    code = "import sys; from sonaray_client.cli import main; sys.argv[0] = 'sonaray'; main()"
    shown = subprocess.run(
        [sys.executable, "-c", code, "models", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    # The server's store commands sit under `models` beside the cluster listing.
    assert "build" in shown.stdout and "list" in shown.stdout


def test_speak_reads_text_from_stdin_and_writes_audio_to_stdout():
    server = FakeServer().reply("POST", "/v1/tts", httpx.Response(200, content=b"ID3-mp3"))
    result = runner.invoke(
        app,
        ["speak", "-o", "-", "-f", "mp3", "--seed", "7", "--speed", "1.25"],
        obj=CliState(transport=server.transport),
        input="Read from a pipe.\n",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == b"ID3-mp3"
    assert json_body(server.requests[0]) == {
        "input": "Read from a pipe.\n",
        "speed": 1.25,
        "seed": 7,
        "response_format": "mp3",
        "stream": True,  # to stdout, each sentence is written as it comes
    }


def test_generate_sends_its_options_and_the_audio_prompt(tmp_path):
    prompt_clip = tmp_path / "beat.wav"
    prompt_clip.write_bytes(WAV)
    server = FakeServer().reply("POST", "/v1/generate", httpx.Response(200, content=WAV))
    out = tmp_path / "more.flac"
    result = invoke(
        server,
        "generate",
        "the same, faster",
        "-o",
        str(out),
        "--duration",
        "2.5",
        "--seed",
        "3",
        "--guidance-scale",
        "4",
        "--audio-prompt",
        str(prompt_clip),
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == WAV
    fields = form_fields(server.requests[0])
    assert json.loads(fields["options"]) == {
        "prompt": "the same, faster",
        "duration_s": 2.5,
        "seed": 3,
        "guidance_scale": 4.0,
    }
    assert fields["response_format"] == "flac"
    assert fields["file"] == ("beat.wav", WAV, "audio/wav")


def test_pipeline_set_options_go_on_top_of_the_json_ones(tmp_path):
    clip = tmp_path / "in.wav"
    clip.write_bytes(WAV)
    answer = {"pipeline": "transcribe-long", "steps": [], "transcription": TRANSCRIPTION}
    server = FakeServer().reply(
        "POST", "/v1/pipelines/transcribe-long", httpx.Response(200, json=answer)
    )
    options = '{"frames": {"threshold": 0.4}, "seq2seq": {"language": "de"}}'
    sets = ["-s", "frames.threshold=0.6", "-s", "seq2seq.prompt=Kenobi"]
    result = invoke(server, "pipeline", "transcribe-long", str(clip), "--options", options, *sets)
    assert result.exit_code == 0, result.output
    assert json.loads(form_fields(server.requests[0])["options"]) == {
        "frames": {"threshold": 0.6},
        "seq2seq": {"language": "de", "prompt": "Kenobi"},
    }
    bad = invoke(server, "pipeline", "transcribe-long", str(clip), "-s", "threshold=0.6")
    assert bad.exit_code == 2 and "STEP.FIELD=VALUE" in bad.stderr


@pytest.mark.parametrize(
    "command",
    ["transcribe", "speak", "generate", "classify", "detect-speech", "pipeline", "health"],
)
def test_every_commands_help_shows_an_example_and_the_exit_codes(command):
    shown = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    assert f"$ sonaray {command}" in shown.stdout or "$ sonaray --base-url" in shown.stdout
    assert "3 server unreachable or refusing" in shown.stdout
