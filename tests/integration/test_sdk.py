"""The SDK (sync and async) against the live cluster: every task family and a pipeline."""

from __future__ import annotations

import asyncio
import io

import pytest
import soundfile as sf
from sonaray_client import AsyncSonaray, NotFoundError, Sonaray
from speech import SENTENCES, synthesize, words

pytestmark = pytest.mark.serve


def test_sync_client_covers_every_task_and_pipeline(serve_url, tmp_path):
    clip = (synthesize(SENTENCES[5]), 16000)
    with Sonaray(base_url=serve_url) as sonaray:
        assert sonaray.health() == {"status": "ok"}
        assert {card.task for card in sonaray.models().data} >= {"seq2seq", "tts", "generate"}
        assert words(sonaray.transcribe(clip).text) == words(SENTENCES[5])
        assert sonaray.transcribe(clip, engine="ctc").duration == pytest.approx(
            len(clip[0]) / 16000, abs=0.01
        )
        assert len(sonaray.classify(clip, top_k=3).labels) == 3
        assert sonaray.detect_speech(clip).segments
        wav = sonaray.speak("Hello there.", model="piper-joe-medium")
        assert sf.info(io.BytesIO(wav)).samplerate == 22050
        flac = sonaray.speak_to_file("Hello there.", tmp_path / "hello.flac")
        assert sf.info(flac).format == "FLAC"
        music = sonaray.generate_audio("soft rain", duration_s=0.5, seed=1)
        assert sf.info(io.BytesIO(music)).duration == pytest.approx(0.5, abs=0.05)
        continued = sonaray.generate_audio(
            "soft rain", duration_s=0.5, seed=1, audio_prompt=(synthesize(SENTENCES[0]), 16000)
        )
        assert sf.info(io.BytesIO(continued)).samplerate == 32000
        result = sonaray.run_pipeline("transcribe-long", clip, {"frames": {"threshold": 0.5}})
        assert [s.task for s in result.steps] == ["frames", "seq2seq"]
        assert words(result.transcription.text) == words(SENTENCES[5])
        with pytest.raises(NotFoundError) as err:
            sonaray.transcribe(clip, model="no-such-model")
        assert err.value.request_id and err.value.param == "model"


def test_async_client_runs_requests_concurrently(serve_url):
    async def run() -> list[str]:
        async with AsyncSonaray(base_url=serve_url) as sonaray:
            results = await asyncio.gather(
                *(sonaray.transcribe((synthesize(s), 16000)) for s in SENTENCES[:4])
            )
        return [r.text for r in results]

    for text, sentence in zip(asyncio.run(run()), SENTENCES[:4], strict=True):
        assert words(text) == words(sentence)


def test_results_keep_request_id_and_timings_and_transcribe_many_runs_a_folder(serve_url):
    clips = [(synthesize(s), 16000) for s in SENTENCES[:3]]

    async def run():
        async with AsyncSonaray(base_url=serve_url) as sonaray:
            return await sonaray.transcribe_many(clips, concurrency=2)

    results = asyncio.run(run())
    assert [words(r.text) for r in results] == [words(s) for s in SENTENCES[:3]]
    info = results[0].response_info
    assert info.request_id and info.status_code == 200
    assert info.server_timing["total"] > 0
    with Sonaray(base_url=serve_url) as sonaray:
        audio = sonaray.speak("Hello there.", extra_headers={"x-request-id": "cli-test-1"})
    assert audio.response_info.request_id == "cli-test-1"
    assert audio.sampling_rate == 22050
