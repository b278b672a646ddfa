"""The ingress app as Serve ships it: pickled by value into the Router replica."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from ray import cloudpickle

from deployments.router.ingress import app
from deployments.router.languages import WHISPER_LANGUAGES

ERRORS = {"400", "401", "404", "413", "415", "500", "503"}


@pytest.fixture(scope="module")
def spec() -> dict:
    shipped = cloudpickle.loads(cloudpickle.dumps(app))
    return TestClient(shipped).get("/openapi.json").json()


def operations(spec: dict):
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_native_task_routes_answer_their_result_types(spec):
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


def _typed(schema: dict) -> bool:
    """A schema a generated client can build a type from: a model, a union of them, or
    a string (text or binary audio)."""
    if "$ref" in schema or schema.get("type") == "string":
        return True
    if schema.get("type") == "array":
        return _typed(schema["items"])
    return bool(schema.get("anyOf")) and all(_typed(s) for s in schema["anyOf"])


def test_every_route_documents_a_typed_200_its_errors_and_headers(spec):
    for name, operation in operations(spec):
        responses = operation["responses"]
        assert set(responses) >= ERRORS, name
        assert "422" not in responses, name  # malformed fields answer 400
        for status in ERRORS:
            ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorEnvelope"), (name, status)
        content = responses["200"]["content"]
        assert content and all(_typed(c["schema"]) for c in content.values()), name
        for status, response in responses.items():
            assert "x-request-id" in response["headers"], (name, status)
        assert "Retry-After" in responses["503"]["headers"], name
        assert "server-timing" in responses["200"]["headers"], name


def test_openai_bodies_are_documented_by_format(spec):
    transcribe = spec["paths"]["/v1/audio/transcriptions"]["post"]["responses"]["200"]["content"]
    refs = {s["$ref"].rsplit("/", 1)[1] for s in transcribe["application/json"]["schema"]["anyOf"]}
    assert refs == {"TranscriptionJson", "TranscriptionVerboseJson"}
    assert {"text/plain", "text/vtt"} <= set(transcribe)
    speech = spec["paths"]["/v1/audio/speech"]["post"]["responses"]["200"]["content"]
    assert set(speech) == {
        "audio/mpeg", "audio/ogg", "audio/aac", "audio/flac", "audio/wav", "audio/pcm"
    }  # fmt: skip


def test_bearer_scheme_guards_all_but_the_open_routes(spec):
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert spec["security"] == [{"bearerAuth": []}]
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    assert "security" not in spec["paths"]["/v1/audio/speech"]["post"]


def test_the_router_imports_no_model_library():
    code = (
        "import sys, deployments.router.ingress; "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


def test_language_names_are_whispers_own():
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    assert WHISPER_LANGUAGES == LANGUAGES and len(WHISPER_LANGUAGES) == 100


def test_playground_page_is_served_and_loads_nothing_from_elsewhere():
    page = TestClient(cloudpickle.loads(cloudpickle.dumps(app))).get("/playground")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/v1/realtime" in page.text and "/v1/audio/speech" in page.text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text), "offline clusters"
