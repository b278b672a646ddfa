"""The ingress deployment: the FastAPI app with every API surface, over task handles."""

from __future__ import annotations

from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.config import SonarayArgs
from deployments.router import hf_api, native, openai_api
from deployments.router.http import create_app, install_service, load_api_keys
from deployments.router.realtime import route as realtime
from deployments.router.service import SonarayService

app = create_app()
app.include_router(native.router)
app.include_router(openai_api.router)
app.include_router(hf_api.router)
app.include_router(realtime.router)


@serve.deployment(max_ongoing_requests=64)
@serve.ingress(app)
class Router:
    """Authenticates, validates, decodes once, and dispatches to task deployments."""

    def __init__(self, args: dict, handles: dict[str, DeploymentHandle]):
        parsed = SonarayArgs.model_validate(args)
        install_service(
            SonarayService(parsed, handles, load_api_keys(parsed.auth)), behind_serve_proxy=True
        )
