"""``build_app(args)``: the one entry point from a Serve config (or Python) to the app.

``serve run serve_config.yaml`` calls it through ``import_path:
deployments.app:build_app``; tests call ``serve.run(build_app({...}))``: same path.
``get_deployment_options`` is the one source of Serve defaults: the decorators carry
none, and a Serve config's ``deployments:`` entries override these key by key.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from ray.serve import Application

from deployments.config import SonarayArgs
from deployments.errors import ConfigError
from deployments.models.store import engine_kind
from deployments.router.ingress import Router
from deployments.serving.load_board import BOARD, LoadBoard
from deployments.serving.task_deployment import ServedModel, TaskDeployment
from deployments.tasks.registry import check_options

ROUTER = "Router"
# How long a stopping replica lets its in-flight requests finish (Serve's default: 20 s).
# A long transcription's chunks take seconds each; the k8s pods' grace periods follow it.
GRACEFUL_SHUTDOWN_S = 30


def get_deployment_options(name: str) -> dict[str, Any]:
    """Serve options for one deployment; the Serve config's ``deployments:`` override them."""
    if name == ROUTER:
        return {
            "name": ROUTER,
            "max_ongoing_requests": 128,
            "max_queued_requests": 256,
            "graceful_shutdown_timeout_s": GRACEFUL_SHUTDOWN_S,
            "ray_actor_options": {"num_cpus": 0.25},
        }
    if name == BOARD:  # one tiny replica: a dict the others write to and read from
        return {
            "name": BOARD,
            "num_replicas": 1,
            "max_ongoing_requests": 1000,
            # No torch, no model: declared small, so k8s sizing reserves little for it.
            "ray_actor_options": {"num_cpus": 0, "memory": 128 * 1024**2},
        }
    return {
        "name": name,
        "max_ongoing_requests": 32,
        "max_queued_requests": 64,
        "health_check_period_s": 10,
        "graceful_shutdown_timeout_s": GRACEFUL_SHUTDOWN_S,
        "ray_actor_options": {"num_cpus": 1, "num_gpus": 0},
        "user_config": {"max_batch_size": 8, "batch_wait_timeout_s": 0.0},
    }


def parse_args(args: dict[str, Any] | SonarayArgs) -> SonarayArgs:
    """Validate Sonaray args; a bad config raises ConfigError naming the field."""
    if isinstance(args, SonarayArgs):
        return args
    try:
        return SonarayArgs.model_validate(args)
    except ValidationError as exc:
        raise ConfigError(f"invalid Sonaray args: {exc}") from None


def served_models(config: SonarayArgs, task: str) -> list[ServedModel]:
    """The models of one task deployment, each engine's options checked against it."""
    models = []
    for i, m in enumerate(config.models):
        if m.task != task:
            continue
        kind = engine_kind(m.ref, m.engine)
        check_options(m.task, kind, m.options, where=f"models[{i}] ({m.name}).options")
        models.append(ServedModel(m.name, m.ref, m.engine, dict(m.options)))
    return models


def build_app(args: dict[str, Any] | SonarayArgs) -> Application:
    """Validate the args and bind the router over one deployment per task family."""
    config = parse_args(args)
    board = LoadBoard.options(**get_deployment_options(BOARD)).bind()
    handles = {}
    for task in config.tasks:
        default = config.default_model(task).name
        handles[task] = TaskDeployment.options(**get_deployment_options(task)).bind(
            task, served_models(config, task), default, board=board
        )
    # The router gets the validated args themselves: it never re-validates them.
    return Router.options(**get_deployment_options(ROUTER)).bind(config, handles, board)
