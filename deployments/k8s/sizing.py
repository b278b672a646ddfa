"""Size Ray worker groups from the Serve deployments they host (ray_actor_options, replicas)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ray.serve.config import AutoscalingConfig

from deployments.errors import ConfigError

GIB = 1024**3
# Serve gives a replica 1 CPU unless ray_actor_options says otherwise.
DEFAULT_REPLICA_CPUS = 1.0
# A replica that declares no `memory`: torch + transformers + a small audio model.
DEFAULT_REPLICA_MEMORY = 2 * GIB
# Raylet, Serve proxy and dashboard agent run on every worker outside the replicas' CPUs.
POD_CPU_OVERHEAD = 1
POD_MEMORY_OVERHEAD = 1 * GIB
# Ray gives 30% of a node's memory to the object store by default.
OBJECT_STORE_FRACTION = 0.3


@dataclass(frozen=True)
class ReplicaNeeds:
    """What one replica of a deployment takes, and how many replicas it may run."""

    name: str
    cpus: float
    gpus: float
    memory: int
    min_replicas: int
    max_replicas: int


@dataclass(frozen=True)
class GroupSize:
    """A worker group's pod shape (Ray's logical resources and the container's) and pod count."""

    ray_cpus: int
    ray_gpus: int
    memory_gib: int
    min_pods: int
    max_pods: int

    def container_resources(self) -> dict[str, str]:
        """Requests == limits: a Ray node must own what it advertises to the scheduler."""
        quantities = {
            "cpu": str(self.ray_cpus + POD_CPU_OVERHEAD),
            "memory": f"{self.memory_gib}Gi",
        }
        if self.ray_gpus:
            quantities["nvidia.com/gpu"] = str(self.ray_gpus)
        return quantities


def replica_range(deployment: dict[str, Any]) -> tuple[int, int]:
    """(min, max) replicas of a Serve deployment entry."""
    autoscaling = deployment.get("autoscaling_config")
    replicas = deployment.get("num_replicas")
    if autoscaling is not None:
        config = AutoscalingConfig(**autoscaling)
        return config.min_replicas, config.max_replicas
    if replicas == "auto":
        raise ConfigError(
            f"deployment {deployment['name']!r}: num_replicas 'auto' needs "
            "autoscaling_config.max_replicas so worker groups can be sized"
        )
    count = 1 if replicas is None else int(replicas)
    return count, count


def replica_needs(deployment: dict[str, Any]) -> ReplicaNeeds:
    """Read one Serve deployment entry's per-replica resources and replica range."""
    options = deployment.get("ray_actor_options") or {}
    low, high = replica_range(deployment)
    return ReplicaNeeds(
        name=deployment["name"],
        cpus=float(options.get("num_cpus", DEFAULT_REPLICA_CPUS)),
        gpus=float(options.get("num_gpus", 0)),
        memory=int(options.get("memory", DEFAULT_REPLICA_MEMORY)),
        min_replicas=low,
        max_replicas=high,
    )


def _pods(needs: Iterable[ReplicaNeeds], count: str, capacity: dict[str, float]) -> int:
    """Pods that hold every replica counted by `count` ("min_replicas"/"max_replicas")."""
    needs = list(needs)
    pods = 0
    for dimension, per_pod in capacity.items():
        if per_pod <= 0:
            continue
        total = sum(getattr(n, count) * getattr(n, dimension) for n in needs)
        pods = max(pods, math.ceil(round(total / per_pod, 6)))
    return pods


def size_group(needs: list[ReplicaNeeds], *, gpus_per_pod: int = 0) -> GroupSize:
    """A pod fits one replica of every deployment in the group, so any replica mix packs."""
    cpus = max(1, math.ceil(round(sum(n.cpus for n in needs), 6)))
    replica_memory = sum(n.memory for n in needs)
    capacity = {"cpus": cpus, "gpus": gpus_per_pod, "memory": replica_memory}
    memory = (replica_memory + POD_MEMORY_OVERHEAD) / (1 - OBJECT_STORE_FRACTION)
    return GroupSize(
        ray_cpus=cpus,
        ray_gpus=gpus_per_pod,
        memory_gib=math.ceil(memory / GIB),
        min_pods=_pods(needs, "min_replicas", capacity),
        max_pods=max(1, _pods(needs, "max_replicas", capacity)),
    )
