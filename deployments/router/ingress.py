"""The ingress deployment: the FastAPI app with every API surface, over task handles."""

from __future__ import annotations

import asyncio

from ray import serve
from ray.serve.handle import DeploymentHandle
from ray.serve.metrics import Counter

from deployments.config import SonarayArgs
from deployments.router import hf_api, native, openai_api, playground, voices
from deployments.router.http import create_app, install_service, load_api_keys
from deployments.router.realtime import route as realtime
from deployments.router.service import SonarayService
from deployments.serving.load_board import report_forever
from deployments.serving.voice_store import voice_store_actor

app = create_app()
app.include_router(native.router)
app.include_router(openai_api.router)
app.include_router(voices.router)
app.include_router(hf_api.router)
app.include_router(realtime.router)
app.include_router(playground.router)


@serve.deployment
@serve.ingress(app)
class Router:
    """Authenticates, validates, decodes once, and dispatches to task deployments."""

    async def __init__(
        self,
        args: SonarayArgs,
        handles: dict[str, DeploymentHandle],
        board: DeploymentHandle | None = None,
    ):
        service = SonarayService(args, handles, load_api_keys(args.auth))
        refusals = Counter(
            "sonaray_rejections",
            "Requests refused by the time bound, a deadline or a drain.",
            tag_keys=("task", "reason"),
        )
        service.admission.on_reject = lambda task, reason: refusals.inc(
            tags={"task": task, "reason": reason}
        )
        install_service(service, behind_serve_proxy=True)
        if board is not None:  # the queue figures admission reads; our load, for drains
            self._loops = [
                asyncio.create_task(service.admission.refresh_forever(board)),
                asyncio.create_task(report_forever(board, "Router", service.admission.load)),
            ]
        directory = str(args.voices.directory) if args.voices.directory else None
        app_name = serve.get_replica_context().app_name
        voices.install_store(voice_store_actor(app_name, directory, args.voices.max_voices))
