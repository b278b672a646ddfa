"""The SDK's request building, response parsing and audio inputs, against a fake server."""

from __future__ import annotations

import base64
import io
import json
import wave

import httpx
import numpy as np
import pytest
from client_fixtures import BASE_URL, TRANSCRIPTION, FakeServer, form_fields, json_body
from pydantic import ValidationError
from sonaray_client import (
    APIResponseValidationError,
    Sonaray,
    Transcription,
    TranscriptionOptions,
    encode_wav,
)
from sonaray_client.subtitles import CueLayout, cues, to_srt, to_vtt

WAV = encode_wav([0.0, 0.5, -0.5, 1.0], 16000)


def read_wav(content: bytes) -> tuple[int, int, np.ndarray]:
    with wave.open(io.BytesIO(content)) as wav:
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        return wav.getnchannels(), wav.getframerate(), frames


def test_transcribe_posts_file_model_and_only_the_set_options():
    server = FakeServer().reply("POST", "/v1/seq2seq", httpx.Response(200, json=TRANSCRIPTION))
    with server.client(api_key="sk-test") as client:
        result = client.transcribe(WAV, model="whisper-tiny", language="de", task="translate")

    assert isinstance(result, Transcription)
    assert result.segments[1].text == " General Kenobi."
    (request,) = server.requests
    assert str(request.url) == f"{BASE_URL}/v1/seq2seq"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["user-agent"].startswith("sonaray-client/")
    fields = form_fields(request)
    assert fields["file"] == ("audio", WAV, "audio/wav")
    assert fields["model"] == "whisper-tiny"
    # Unset options stay unsent so the server's defaults (and model defaults) apply.
    assert json.loads(fields["options"]) == {"language": "de", "task": "translate"}


def test_ctc_engine_uses_its_route_and_omits_absent_model():
    server = FakeServer().reply("POST", "/v1/ctc", httpx.Response(200, json=TRANSCRIPTION))
    with server.client() as client:
        client.transcribe(WAV, engine="ctc")
    fields = form_fields(server.requests[0])
    assert "model" not in fields
    assert json.loads(fields["options"]) == {}


def test_bad_options_and_engine_fail_before_any_request():
    server = FakeServer()
    with server.client() as client:
        with pytest.raises(ValidationError, match="temperature"):
            client.transcribe(WAV, temperature=5.0)
        with pytest.raises(ValidationError, match="beam_size"):
            client.transcribe(WAV, beam_size=4)
        with pytest.raises(ValueError, match="engine"):
            client.transcribe(WAV, engine="rnnt")
    assert server.requests == []


def test_classify_and_detect_speech_parse_their_results():
    labels = {"labels": [{"label": "dog", "score": 0.9}], "model": "ast"}
    segments = {"segments": [{"start": 0.1, "end": 0.9}], "duration": 1.0}
    server = (
        FakeServer()
        .reply("POST", "/v1/classify", httpx.Response(200, json=labels))
        .reply("POST", "/v1/frames", httpx.Response(200, json=segments))
    )
    with server.client() as client:
        assert client.classify(WAV, top_k=1).labels[0].label == "dog"
        assert client.detect_speech(WAV, threshold=0.7).segments[0].end == 0.9
    assert json.loads(form_fields(server.requests[0])["options"]) == {"top_k": 1}
    assert json.loads(form_fields(server.requests[1])["options"]) == {"threshold": 0.7}


def test_speak_sends_json_and_returns_audio_bytes(tmp_path):
    server = FakeServer().reply(
        "POST", "/v1/tts", httpx.Response(200, content=WAV, headers={"content-type": "audio/wav"})
    )
    with server.client() as client:
        audio = client.speak("Hi.", model="piper", voice="joe", speed=1.5)
        written = client.speak_to_file("Hi.", tmp_path / "hi.flac")

    assert audio == WAV
    assert json_body(server.requests[0]) == {
        "model": "piper",
        "input": "Hi.",
        "voice": "joe",
        "speed": 1.5,
        "response_format": "wav",
    }
    assert json_body(server.requests[1])["response_format"] == "flac"
    assert written.read_bytes() == WAV


def test_generate_audio_uses_json_or_multipart_with_a_prompt():
    server = FakeServer().reply("POST", "/v1/generate", httpx.Response(200, content=WAV))
    with server.client() as client:
        client.generate_audio("lofi beat", duration_s=2.0)
        client.generate_audio("more", model="musicgen", audio_prompt=WAV, response_format="flac")

    assert json_body(server.requests[0]) == {
        "prompt": "lofi beat",
        "duration_s": 2.0,
        "response_format": "wav",
    }
    fields = form_fields(server.requests[1])
    assert json.loads(fields["options"]) == {"prompt": "more"}
    assert fields["model"] == "musicgen"
    assert fields["response_format"] == "flac"
    assert fields["file"][1] == WAV


def test_run_pipeline_quotes_name_and_serialises_step_options():
    result = {
        "pipeline": "speech to speech",
        "steps": [{"step": "asr", "task": "seq2seq", "model": "whisper", "seconds": 0.5}],
        "transcription": TRANSCRIPTION,
        "audio_base64": base64.b64encode(WAV).decode(),
        "audio_sampling_rate": 16000,
    }
    server = FakeServer().reply(
        "POST", "/v1/pipelines/speech to speech", httpx.Response(200, json=result)
    )
    options = {"seq2seq": TranscriptionOptions(language="fr"), "tts": {"voice": "joe"}}
    with server.client() as client:
        answer = client.run_pipeline("speech to speech", WAV, options)

    assert answer.transcription.text == TRANSCRIPTION["text"]
    assert base64.b64decode(answer.audio_base64) == WAV
    request = server.requests[0]
    assert request.url.raw_path == b"/v1/pipelines/speech%20to%20speech"
    assert json.loads(form_fields(request)["options"]) == {
        "seq2seq": {"language": "fr"},
        "tts": {"voice": "joe"},
    }


def test_models_and_health():
    cards = {"data": [{"id": "whisper-tiny", "task": "seq2seq", "default": True}]}
    server = (
        FakeServer()
        .reply("GET", "/v1/models", httpx.Response(200, json=cards))
        .reply("GET", "/healthz", httpx.Response(200, json={"status": "ok"}))
    )
    with server.client() as client:
        assert client.models().data[0].id == "whisper-tiny"
        assert client.health() == {"status": "ok"}


def test_a_2xx_body_that_breaks_the_wire_type_is_a_typed_error():
    server = FakeServer().reply("POST", "/v1/seq2seq", httpx.Response(200, json={"txt": "hi"}))
    with server.client() as client, pytest.raises(APIResponseValidationError):
        client.transcribe(WAV)


def test_settings_come_from_arguments_then_environment_then_defaults(monkeypatch):
    monkeypatch.delenv("SONARAY_BASE_URL", raising=False)
    monkeypatch.delenv("SONARAY_API_KEY", raising=False)
    plain = Sonaray()
    assert plain.base_url == "http://127.0.0.1:8000"
    assert "Authorization" not in plain.settings.headers()

    monkeypatch.setenv("SONARAY_BASE_URL", "http://env:9000/")
    monkeypatch.setenv("SONARAY_API_KEY", "env-key")
    assert Sonaray().base_url == "http://env:9000"
    assert Sonaray().settings.headers()["Authorization"] == "Bearer env-key"
    assert Sonaray(base_url="http://arg", api_key="k").base_url == "http://arg"


def test_timeout_travels_with_each_request_and_a_call_can_set_its_own():
    server = FakeServer().reply("GET", "/healthz", httpx.Response(200, json={"status": "ok"}))
    with server.client(timeout=7.5) as client:
        client.health()
        client.health(timeout=httpx.Timeout(3.0, read=1.0))
    assert server.requests[0].extensions["timeout"]["read"] == 7.5
    assert server.requests[1].extensions["timeout"] == {
        "connect": 3.0,
        "read": 1.0,
        "write": 3.0,
        "pool": 3.0,
    }


def test_default_timeout_grows_with_the_audio_so_long_uploads_are_not_cut_off():
    server = FakeServer().reply("POST", "/v1/seq2seq", httpx.Response(200, json=TRANSCRIPTION))
    ten_minutes = encode_wav(np.zeros(8000 * 600, dtype=np.int16), 8000)
    with server.client() as client:
        client.transcribe(WAV)
        client.transcribe(ten_minutes)
    short, long = (r.extensions["timeout"] for r in server.requests)
    assert short["read"] == pytest.approx(120.0, abs=1)
    # 120 s, plus twice the clip's length read from its WAV header.
    assert long["read"] == pytest.approx(120.0 + 2 * 600)
    assert long["connect"] == 120.0


def test_extra_headers_are_added_to_one_call_only():
    server = FakeServer().reply("POST", "/v1/tts", httpx.Response(200, content=WAV))
    with server.client(api_key="sk-1") as client:
        client.speak("Hi.", extra_headers={"x-request-id": "mine-1", "x-tenant": "a"})
        client.speak("Hi.")
    first, second = server.requests
    assert (first.headers["x-request-id"], first.headers["x-tenant"]) == ("mine-1", "a")
    assert first.headers["authorization"] == "Bearer sk-1"
    assert "x-tenant" not in second.headers


def test_results_keep_the_request_id_and_server_timing():
    headers = {"x-request-id": "req-42", "server-timing": "decode;dur=3.5, seq2seq;dur=120"}
    # Ray Serve's proxy can echo the id a caller sent a second time.
    audio_headers = [("x-request-id", "req-43"), ("x-request-id", "req-43")]
    audio_headers.append(("x-sampling-rate", "22050"))
    server = (
        FakeServer()
        .reply("POST", "/v1/seq2seq", httpx.Response(200, json=TRANSCRIPTION, headers=headers))
        .reply("POST", "/v1/tts", httpx.Response(200, content=WAV, headers=audio_headers))
    )
    with server.client() as client:
        result = client.transcribe(WAV)
        audio = client.speak("Hi.")
    assert result.response_info.request_id == "req-42"
    assert result.response_info.server_timing == {"decode": 3.5, "seq2seq": 120.0}
    # The wire shape is untouched: equal to the same result built locally, same JSON.
    local = Transcription.model_validate(TRANSCRIPTION)
    assert result == local and local.response_info is None
    assert result.model_dump() == local.model_dump()
    assert audio == WAV and audio.response_info.request_id == "req-43"
    assert audio.sampling_rate == 22050


def test_path_and_file_object_inputs_keep_their_names(tmp_path):
    path = tmp_path / "clip.wav"
    path.write_bytes(WAV)
    server = FakeServer().reply("POST", "/v1/seq2seq", httpx.Response(200, json=TRANSCRIPTION))
    with server.client() as client:
        client.transcribe(path)
        client.transcribe(str(path))
        with path.open("rb") as fh:
            client.transcribe(fh)
        with pytest.raises(TypeError, match="binary"), path.open("r", encoding="latin-1") as fh:
            client.transcribe(fh)
        with pytest.raises(TypeError, match="unsupported audio"):
            client.transcribe(12)
    files = [form_fields(r)["file"] for r in server.requests]
    assert files == [("clip.wav", WAV, "audio/wav")] * 3


def test_float_array_is_sent_as_16_bit_wav():
    samples = np.array([0.0, 0.5, -1.0, 2.0], dtype=np.float32)
    server = FakeServer().reply("POST", "/v1/seq2seq", httpx.Response(200, json=TRANSCRIPTION))
    with server.client() as client:
        client.transcribe((samples, 22050))
    filename, content, content_type = form_fields(server.requests[0])["file"]
    assert (filename, content_type) == ("audio.wav", "audio/wav")
    channels, rate, frames = read_wav(content)
    # Out-of-range samples clip to full scale rather than wrapping around.
    assert (channels, rate, frames.tolist()) == (1, 22050, [0, 16384, -32767, 32767])


def test_channels_first_stereo_is_interleaved():
    left = np.full(100, 0.25, dtype=np.float64)
    right = np.full(100, -0.25, dtype=np.float64)
    channels, rate, frames = read_wav(encode_wav(np.stack([left, right]), 8000))
    assert (channels, rate) == (2, 8000)
    assert frames[:4].tolist() == [8192, -8192, 8192, -8192]


def test_int16_array_and_float_list_encode_identically():
    as_int16 = encode_wav(np.array([0, 16384, -16384], dtype=np.int16), 16000)
    assert read_wav(as_int16)[2].tolist() == [0, 16384, -16384]
    assert read_wav(encode_wav([0.0, 0.5, -0.5], 16000))[2].tolist() == [0, 16384, -16384]
    with pytest.raises(TypeError, match="int32"):
        encode_wav(np.zeros(4, dtype=np.int32), 16000)
    with pytest.raises(ValueError, match="sampling_rate"):
        encode_wav([0.0], 0)


def test_subtitles_count_hours_and_fall_back_to_one_cue_without_segments():
    long = Transcription(
        text="late",
        duration=4000.0,
        segments=[{"id": 0, "start": 3725.5, "end": 3727.25, "text": " late"}],
    )
    assert to_srt(long) == "1\n01:02:05,500 --> 01:02:07,250\nlate\n"
    plain = Transcription(text="no timestamps", duration=2.0)
    assert to_vtt(plain) == "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nno timestamps\n"
    assert to_srt(Transcription(text=" ", duration=1.0)) == ""


def test_line_limits_regroup_words_as_whispers_writer_does():
    words = [("Hello", 0.0, 0.5), ("there,", 0.6, 1.0), ("my", 1.1, 1.3), ("friend.", 1.4, 2.0)]
    later = [("Again.", 6.0, 6.5)]
    transcription = Transcription(
        text="Hello there, my friend. Again.",
        duration=7.0,
        segments=[
            {
                "id": i,
                "start": group[0][1],
                "end": group[-1][2],
                "text": " ".join(w for w, _, _ in group),
                "words": [{"word": f" {w}", "start": a, "end": b} for w, a, b in group],
            }
            for i, group in enumerate([words, later])
        ],
    )
    # Words per line alone: each segment stays one cue, broken into lines.
    per_line = cues(transcription, CueLayout(max_words_per_line=2))
    assert [(c.start, c.end, c.text) for c in per_line] == [
        (0.0, 2.0, "Hello there,\nmy friend."),
        (6.0, 6.5, "Again."),
    ]
    # Width and count together: words flow into two-line cues; a long pause breaks one.
    flowing = cues(transcription, CueLayout(max_line_width=12, max_line_count=2))
    assert [(c.start, c.end, c.text) for c in flowing] == [
        (0.0, 2.0, "Hello there,\nmy friend."),
        (6.0, 6.5, "Again."),
    ]
    narrow = cues(transcription, CueLayout(max_line_width=9, max_line_count=1))
    assert [c.text for c in narrow] == ["Hello", "there, my", "friend.", "Again."]
    # Without word timings the limits cannot apply: one cue per segment.
    plain = transcription.model_copy(
        update={"segments": [s.model_copy(update={"words": None}) for s in transcription.segments]}
    )
    assert [c.text for c in cues(plain, CueLayout(max_line_width=5))] == [
        "Hello there, my friend.",
        "Again.",
    ]
