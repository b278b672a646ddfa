"""Time-bound admission, deadlines and per-key quotas, from the figures replicas report."""

from __future__ import annotations

import time

import pytest

from deployments.config import LimitsConfig
from deployments.errors import InvalidRequest, Overloaded, RateLimited
from deployments.router.admission import Admission, queue_wait
from deployments.router.quotas import CallerQuotas
from deployments.router.request_scope import caller_id, parse_deadline
from deployments.serving.load_board import REPORT_EVERY_S, BoardSnapshot, ReplicaLoad, ReplicaReport


def report(task: str, in_flight: int, per_item: float | None, replica: str = "a"):
    return ReplicaReport(task, replica, in_flight, per_item, 0, 0, 0, "node", time.time())


def board(*reports: ReplicaReport, draining: bool = False) -> BoardSnapshot:
    return BoardSnapshot(reports, draining, time.time())


def test_the_wait_is_the_queue_over_the_measured_rate_and_falls_as_replicas_are_added():
    one = board(report("seq2seq", 20, 0.5))
    assert queue_wait(one, "seq2seq") == pytest.approx(10.0)
    # A new replica that has measured nothing yet counts at its sibling's speed.
    two = board(report("seq2seq", 20, 0.5), report("seq2seq", 0, None, "b"))
    assert queue_wait(two, "seq2seq") == pytest.approx(5.0)


def test_nothing_measured_means_admit():
    assert queue_wait(None, "seq2seq") == 0
    assert queue_wait(board(report("seq2seq", 50, None)), "seq2seq") == 0


def test_a_request_that_would_queue_past_the_bound_is_refused_with_a_retry_after():
    admission = Admission(max_queue_seconds=2.0)
    admission.update(board(report("seq2seq", 10, 0.5)))  # 5 s of queue
    with pytest.raises(Overloaded) as refused:
        admission.check(["seq2seq"])
    assert refused.value.status == 503 and refused.value.code == "queue_full"
    assert refused.value.retry_after_s == 3
    admission.check(["frames"])  # another task's queue is not this one's


def test_calls_sent_since_the_last_report_count_toward_the_queue():
    admission = Admission(max_queue_seconds=2.0)
    admission.update(board(report("seq2seq", 0, 0.5)))
    for _ in range(4):
        admission.sending("seq2seq")
    admission.check(["seq2seq"])  # 2 s: at the bound, not past it
    admission.sending("seq2seq")
    with pytest.raises(Overloaded):
        admission.check(["seq2seq"])  # 2.5 s
    # A report made a period after those calls holds them itself: not counted twice.
    admission.update(board(report("seq2seq", 2, 0.5)))
    admission._read_at += 2 * REPORT_EVERY_S
    admission.check(["seq2seq"])


def test_a_deadline_that_cannot_be_met_is_refused_before_any_work():
    admission = Admission(max_queue_seconds=None)
    admission.update(board(report("seq2seq", 4, 0.5)))  # 2 s queue + 0.5 s service
    admission.check(["seq2seq"], deadline=time.monotonic() + 5)
    with pytest.raises(Overloaded) as refused:
        admission.check(["seq2seq"], deadline=time.monotonic() + 1)
    assert refused.value.code == "deadline_unmeetable"


def test_a_draining_cluster_refuses_everything():
    admission = Admission(max_queue_seconds=10)
    admission.update(board(draining=True))
    with pytest.raises(Overloaded) as refused:
        admission.check(["tts"])
    assert refused.value.code == "draining"


def test_service_time_per_item_follows_batches_as_they_fill():
    load = ReplicaLoad()
    load.served(1, 0.5)
    assert load.seconds_per_item == pytest.approx(0.5)
    for _ in range(30):
        load.served(4, 0.5)
    assert load.seconds_per_item == pytest.approx(0.125, rel=0.01)
    with load.track():
        assert load.in_flight == 1
    assert load.in_flight == 0


def test_per_key_concurrency_answers_429_and_frees_the_slot_after():
    quotas = CallerQuotas(LimitsConfig(per_key_concurrent_requests=1))
    with quotas.request("k"):
        with pytest.raises(RateLimited) as limited, quotas.request("k"):
            pass
        assert limited.value.status == 429 and limited.value.retry_after_s >= 1
        with quotas.request("other"):
            pass
    with quotas.request("k"):
        pass


def test_per_key_audio_per_minute():
    quotas = CallerQuotas(LimitsConfig(per_key_audio_seconds_per_minute=60))
    quotas.charge_audio("k", 50)
    with pytest.raises(RateLimited) as limited:
        quotas.charge_audio("k", 20)
    assert 1 <= limited.value.retry_after_s <= 60
    quotas.charge_audio("other", 50)
    quotas.charge_audio(None, 1000)  # no key: no quota


def test_request_timeout_header():
    assert parse_deadline(None) is None
    assert parse_deadline("2.5") > time.monotonic() + 2
    for bad in ("0", "-1", "soon", "nan"):
        with pytest.raises(InvalidRequest):
            parse_deadline(bad)
    assert caller_id("secret") != "secret" and "secret" not in caller_id("secret")


def test_the_sdk_sends_its_timeout_as_the_request_deadline():
    import httpx
    from sonaray_client import core

    settings = core.ClientSettings.resolve("http://x", None, 30, 0)
    call = core.ApiCall("GET", "/v1/models", parse=lambda r: r)
    with httpx.Client() as http:
        assert call.build(http, settings).headers["x-request-timeout"] == "30"
