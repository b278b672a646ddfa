"""The ingress app as Serve ships it: pickled by value into the Router replica."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from ray import cloudpickle

from deployments.router.ingress import app


def test_app_survives_pickling_and_documents_every_route_with_its_errors():
    shipped = cloudpickle.loads(cloudpickle.dumps(app))
    spec = TestClient(shipped).get("/openapi.json").json()
    for task, schema in {
        "seq2seq": "Transcription",
        "ctc": "Transcription",
        "classify": "Classification",
        "frames": "SpeechSegments",
    }.items():
        post = spec["paths"][f"/v1/{task}"]["post"]
        assert post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
            schema
        )
        assert {"400", "404", "413", "503"} <= set(post["responses"])


def test_playground_page_is_served_and_loads_nothing_from_elsewhere():
    page = TestClient(cloudpickle.loads(cloudpickle.dumps(app))).get("/playground")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/v1/realtime" in page.text and "/v1/audio/speech" in page.text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text), "offline clusters"
