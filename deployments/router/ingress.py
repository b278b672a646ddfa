"""The ingress deployment: the FastAPI app with every API surface, over task handles."""

from __future__ import annotations

from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.config import SonarayArgs
from deployments.router import hf_api, native, openai_api, playground
from deployments.router.http import create_app, install_service, load_api_keys
from deployments.router.realtime import route as realtime
from deployments.router.service import SonarayService

app = create_app()
app.include_router(native.router)
app.include_router(openai_api.router)
app.include_router(hf_api.router)
app.include_router(realtime.router)
app.include_router(playground.router)


@serve.deployment
@serve.ingress(app)
class Router:
    """Authenticates, validates, decodes once, and dispatches to task deployments."""

    def __init__(self, args: SonarayArgs, handles: dict[str, DeploymentHandle]):
        install_service(
            SonarayService(args, handles, load_api_keys(args.auth)), behind_serve_proxy=True
        )
