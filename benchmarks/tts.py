"""TTS: time to first audio byte and speed (audio s / wall s) for the Piper voice and the
tiny VITS model served over ``POST /v1/tts``, vs direct engine calls in-process.

Requests are sequential and alternate served / direct sentence by sentence, so both see
the same machine load. ``/v1/tts`` answers with the whole WAV, so its first byte comes
after synthesis; a direct call's first audio is its whole result.
"""

from __future__ import annotations

import argparse
import io
from typing import Any

import soundfile as sf
from harness import (
    MODEL_THREADS,
    BaselineFailed,
    derive_config,
    main,
    print_table,
    ratio,
    run_load,
    serve_cluster,
    summary,
    timed,
)

PORT = 8206
MODELS = {
    "piper-joe-medium": {"threads": MODEL_THREADS},
    "tiny-vits": {"num_threads": MODEL_THREADS},
}


def _engines() -> dict[str, Any]:
    from deployments.models.store import resolve
    from deployments.tasks.registry import load_engine

    engines = {}
    for name, options in MODELS.items():
        try:
            resolved = resolve(name)
            engines[name] = load_engine("tts", resolved.engine, resolved.path, name=name, **options)
        except Exception as exc:
            raise BaselineFailed(f"direct {name} engine: {exc}") from exc
    return engines


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sonaray_client.types import SpeechOptions
    from speech import SENTENCES

    from deployments.protocol import TextItem

    sentences = list(SENTENCES[: 3 if args.quick else len(SENTENCES)])
    rounds = 2 if args.quick else 3
    engines = _engines()
    config = derive_config(
        PORT,
        [{"name": name, "task": "tts"} for name in MODELS],
        deployments={"tts": {"num_replicas": 1, "ray_actor_options": {"num_cpus": MODEL_THREADS}}},
    )
    rows, ratios = [], {}
    with serve_cluster(config) as base:
        for name, engine in engines.items():
            served: dict[str, list[float]] = {"ttfb": [], "latency": [], "audio": []}
            direct: dict[str, list[float]] = {"latency": [], "audio": []}
            for k in range(rounds * len(sentences) + 1):
                text = sentences[k % len(sentences)]
                one = run_load(
                    base,
                    lambda i, text=text, name=name: {
                        "method": "POST",
                        "url": "/v1/tts",
                        "json": {"input": text, "model": name},
                    },
                    1,
                    1,
                )
                seconds, out = timed(
                    lambda text=text, engine=engine: engine.forward(
                        [TextItem(SpeechOptions(input=text))]
                    )
                )
                if k == 0:
                    continue  # warm-up: the first served call loads and caches the model
                served["ttfb"].append(one.first_byte[0])
                served["latency"].append(one.latencies[0])
                served["audio"].append(sf.info(io.BytesIO(one.bodies[0])).duration)
                direct["latency"].append(seconds)
                direct["audio"].append(out[0].duration)
            for path, figures in (("served /v1/tts", served), ("direct engine", direct)):
                latency = summary(figures["latency"])
                first = summary(figures.get("ttfb", figures["latency"]))
                rows.append(
                    {
                        "model": name,
                        "path": path,
                        "n": latency["n"],
                        "first_audio_p50_ms": first["p50_ms"],
                        "first_audio_p95_ms": first["p95_ms"],
                        "latency_p50_ms": latency["p50_ms"],
                        "x_realtime": round(sum(figures["audio"]) / sum(figures["latency"]), 2),
                    }
                )
            s, d = rows[-2], rows[-1]
            ratios[f"{name}_served_over_direct_first_audio_p50"] = ratio(
                s["first_audio_p50_ms"], d["first_audio_p50_ms"]
            )
            ratios[f"{name}_served_over_direct_x_realtime"] = ratio(
                s["x_realtime"], d["x_realtime"]
            )
    print_table(f"TTS, {len(sentences)} sentences x {rounds}, concurrency 1", rows)
    print_table("ratios", [ratios])
    return {"threads": MODEL_THREADS, "rows": rows, "ratios": ratios}


if __name__ == "__main__":
    main("tts", run, __doc__)
