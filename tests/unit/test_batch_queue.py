"""BatchQueue: batches fill while the model is busy, one model per batch, failures stay local."""

from __future__ import annotations

import asyncio

import pytest

from deployments.serving.batch_queue import BatchQueue


class GatedModel:
    """A batch handler that records its batches and holds each one until released."""

    def __init__(self, fail_on: str | None = None):
        self.batches: list[tuple[str, list]] = []
        self.gate = asyncio.Event()
        self.started = asyncio.Event()
        self.fail_on = fail_on

    async def __call__(self, key: str, items: list, arrived: list[float]) -> list:
        assert len(arrived) == len(items)
        self.batches.append((key, list(items)))
        self.started.set()
        await self.gate.wait()
        if self.fail_on in items:
            raise RuntimeError("model broke")
        return [f"{key}:{item}" for item in items]


async def busy_then(queue: BatchQueue, model: GatedModel, first, more: list[tuple[str, str]]):
    """Submit ``first``; while its batch runs, submit ``more``; then let everything run."""
    tasks = [asyncio.create_task(queue.submit(*first))]
    await model.started.wait()
    tasks += [asyncio.create_task(queue.submit(*m)) for m in more]
    await asyncio.sleep(0)
    model.gate.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_an_idle_queue_starts_a_lone_request_at_once():
    model = GatedModel()
    queue = BatchQueue(model, max_batch_size=8)
    task = asyncio.create_task(queue.submit("m", 1))
    await asyncio.wait_for(model.started.wait(), 5)  # no other request needed to start
    model.gate.set()
    assert await task == "m:1"


async def test_everything_that_arrived_while_busy_is_the_next_batch():
    model = GatedModel()
    queue = BatchQueue(model, max_batch_size=8)
    out = await busy_then(queue, model, ("m", 0), [("m", i) for i in range(1, 6)])
    assert out == [f"m:{i}" for i in range(6)]
    assert [items for _, items in model.batches] == [[0], [1, 2, 3, 4, 5]]


async def test_batches_never_mix_models_and_keep_arrival_order():
    model = GatedModel()
    queue = BatchQueue(model, max_batch_size=8)
    more = [("a", 1), ("b", 2), ("a", 3), ("b", 4)]
    out = await busy_then(queue, model, ("a", 0), more)
    assert out == ["a:0", "a:1", "b:2", "a:3", "b:4"]
    assert model.batches == [("a", [0]), ("a", [1, 3]), ("b", [2, 4])]


async def test_max_batch_size_is_tunable_live():
    model = GatedModel()
    queue = BatchQueue(model, max_batch_size=8)
    queue.configure(max_batch_size=2)
    await busy_then(queue, model, ("m", 0), [("m", i) for i in range(1, 6)])
    assert [len(items) for _, items in model.batches] == [1, 2, 2, 1]


@pytest.mark.parametrize("bad", [{"max_batch_size": 0}, {"batch_wait_timeout_s": -1.0}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        BatchQueue(GatedModel()).configure(**bad)


async def test_a_wait_tops_up_a_batch_before_it_starts():
    model = GatedModel()
    model.gate.set()
    queue = BatchQueue(model, max_batch_size=3, batch_wait_timeout_s=5.0)
    out = await asyncio.gather(*(queue.submit("m", i) for i in range(3)))
    assert out == ["m:0", "m:1", "m:2"]
    assert [items for _, items in model.batches] == [[0, 1, 2]]


async def test_a_failed_batch_fails_its_callers_only():
    model = GatedModel(fail_on="bad")
    queue = BatchQueue(model, max_batch_size=8)
    out = await busy_then(queue, model, ("m", "bad"), [("m", "ok")])
    assert isinstance(out[0], RuntimeError) and out[1] == "m:ok"


async def test_a_caller_that_went_away_is_not_run():
    model = GatedModel()
    queue = BatchQueue(model, max_batch_size=8)
    first = asyncio.create_task(queue.submit("m", 0))
    await model.started.wait()
    gone = asyncio.create_task(queue.submit("m", "gone"))
    kept = asyncio.create_task(queue.submit("m", 2))
    await asyncio.sleep(0)
    gone.cancel()
    model.gate.set()
    assert await first == "m:0" and await kept == "m:2"
    assert [items for _, items in model.batches] == [[0], [2]]
