"""k8s/ manifests: valid for KubeRay and Kubernetes, in step with the Serve config."""

from __future__ import annotations

import copy
import json
import shlex
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from ray.serve.schema import ServeDeploySchema
from typer.testing import CliRunner

from deployments.errors import ConfigError
from deployments.k8s import cli, render
from deployments.k8s.sizing import replica_needs, size_group

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
CRD = K8S / "crds" / "ray.io_rayservices.yaml"  # vendored: see k8s/crds/README.md
KUBERNETES_VERSION = "1.30"
SERVE_CONFIG = REPO / "serve_config.yaml"


def _documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


MANIFESTS = sorted(K8S.glob("*.yaml"))
DOCUMENTS = [(p.name, d) for p in MANIFESTS for d in _documents(p)]
RAYSERVICES = [(name, d) for name, d in DOCUMENTS if d["kind"] == "RayService"]


def _strict(schema: object) -> object:
    """Reject unknown fields like kubectl's strict field validation; the CRD alone allows them."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def crd_schema() -> dict:
    crd = yaml.safe_load(CRD.read_text())
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return v1["schema"]["openAPIV3Schema"]


@pytest.fixture(scope="module")
def strict_validator(crd_schema: dict) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(_strict(crd_schema))


def _errors(validator: jsonschema.Draft7Validator, manifest: dict) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(manifest)
    ]


def test_k8s_holds_both_rayservice_variants():
    assert {name for name, _ in RAYSERVICES} == {"rayservice-cpu.yaml", "rayservice-gpu.yaml"}


@pytest.mark.parametrize("name,manifest", RAYSERVICES, ids=[n for n, _ in RAYSERVICES])
def test_rayservice_matches_kuberay_crd(strict_validator, name, manifest):
    assert _errors(strict_validator, manifest) == []


def test_misspelt_field_fails_crd_validation(crd_schema, strict_validator):
    manifest = copy.deepcopy(dict(RAYSERVICES)["rayservice-cpu.yaml"])
    group = manifest["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    # A typo here would silently drop the custom resources that pin replicas to GPU pods.
    group["rayStartParam"] = group.pop("rayStartParams")
    container = group["template"]["spec"]["containers"][0]
    container["imagePullPolicyy"] = container.pop("imagePullPolicy")
    errors = _errors(strict_validator, manifest)
    assert any("rayStartParam'" in e for e in errors), errors
    assert any("imagePullPolicyy" in e for e in errors), errors
    # The CRD as published lets both typos through: that is why the test is strict.
    assert _errors(jsonschema.Draft7Validator(crd_schema), manifest) == []


def _pod_templates(manifest: dict) -> list[tuple[str, dict]]:
    cluster = manifest["spec"]["rayClusterConfig"]
    groups = [("head", cluster["headGroupSpec"])]
    groups += [(g["groupName"], g) for g in cluster["workerGroupSpecs"]]
    return [(name, group["template"]) for name, group in groups]


@pytest.mark.parametrize("name,manifest", RAYSERVICES, ids=[n for n, _ in RAYSERVICES])
def test_pod_templates_are_valid_core_kubernetes(name, manifest):
    for group, template in _pod_templates(manifest):
        pod_template = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": f"sonaray-{group}"},
            "template": template,
        }
        kubernetes_validate.validate(pod_template, KUBERNETES_VERSION, strict=True)


def test_core_validation_catches_a_bad_pod_template():
    template = copy.deepcopy(_pod_templates(dict(RAYSERVICES)["rayservice-gpu.yaml"])[-1][1])
    template["spec"]["tolerations"][0]["efect"] = "NoSchedule"
    bad = {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": "x"},
        "template": template,
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


CORE = [(n, d) for n, d in DOCUMENTS if d["kind"] != "RayService"]


@pytest.mark.parametrize("name,manifest", CORE, ids=[f"{n}:{d['kind']}" for n, d in CORE])
def test_other_manifests_are_valid_kubernetes(name, manifest):
    if manifest["apiVersion"].startswith("monitoring.coreos.com/"):
        pytest.skip("PodMonitor is a prometheus-operator CRD; its schema is not available here")
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def _serve_config(manifest: dict) -> dict:
    return yaml.safe_load(manifest["spec"]["serveConfigV2"])


@pytest.mark.parametrize("name,manifest", RAYSERVICES, ids=[n for n, _ in RAYSERVICES])
def test_serve_config_v2_parses_with_ray_serve_schema(name, manifest):
    schema = ServeDeploySchema.model_validate(_serve_config(manifest))
    assert [app.name for app in schema.applications] == ["sonaray"]
    assert schema.http_options.host == "0.0.0.0"
    assert schema.http_options.port == render.SERVE_PORT


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_checked_in_manifests_equal_the_render(gpu):
    path = render.manifest_path(K8S, gpu=gpu)
    assert path.read_text() == render.render_text(SERVE_CONFIG, gpu=gpu), (
        f"{path} is out of date with serve_config.yaml: run `sonaray k8s render`"
    )


def test_cpu_variant_serves_the_serve_config_as_written():
    config = render.load_serve_config(SERVE_CONFIG)
    served = _serve_config(dict(RAYSERVICES)["rayservice-cpu.yaml"])
    assert served["applications"] == config["applications"]


def test_cli_check_fails_on_drift_and_passes_after_render(tmp_path):
    runner = CliRunner()
    args = ["--config", str(SERVE_CONFIG), "--out-dir", str(tmp_path)]
    assert runner.invoke(cli.app, ["render", *args]).exit_code == 0
    assert runner.invoke(cli.app, ["render", "--check", *args]).exit_code == 0
    stale = tmp_path / "rayservice-gpu.yaml"
    stale.write_text(stale.read_text().replace("maxReplicas: ", "maxReplicas: 1"))
    result = runner.invoke(cli.app, ["render", "--check", *args])
    assert result.exit_code == 1
    assert "maxReplicas" in result.output


def _deployments(manifest: dict) -> dict[str, dict]:
    apps = _serve_config(manifest)["applications"]
    return {d["name"]: d for app in apps for d in app["deployments"]}


def _node_resources(group: dict) -> dict[str, float]:
    params = group["rayStartParams"]
    # KubeRay appends `--resources=<value>` to the `ray start` shell command.
    (argument,) = shlex.split(f"--resources={params['resources']}")
    custom = json.loads(argument.removeprefix("--resources="))
    return {"CPU": float(params["num-cpus"]), "GPU": float(params["num-gpus"]), **custom}


def _replica_resources(deployment: dict) -> dict[str, float]:
    options = deployment["ray_actor_options"]
    return {"CPU": options["num_cpus"], "GPU": options.get("num_gpus", 0), **options["resources"]}


def test_gpu_variant_pins_tasks_to_gpu_workers_and_router_to_cpu():
    manifest = dict(RAYSERVICES)["rayservice-gpu.yaml"]
    groups = {g["groupName"]: g for g in manifest["spec"]["rayClusterConfig"]["workerGroupSpecs"]}
    nodes = {name: _node_resources(group) for name, group in groups.items()}
    for name, deployment in _deployments(manifest).items():
        needs = _replica_resources(deployment)
        fits = sorted(
            g for g, node in nodes.items() if all(node.get(k, 0) >= v for k, v in needs.items())
        )
        on_cpu = name in ("Router", "LoadBoard")
        assert fits == (["cpu"] if on_cpu else ["gpu"]), (name, needs, nodes)
        if not on_cpu:
            assert 0 < needs["GPU"] < 1, f"{name} should share a GPU"
    gpu_container = groups["gpu"]["template"]["spec"]["containers"][0]
    assert gpu_container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert nodes["gpu"]["GPU"] == 1


@pytest.mark.parametrize("name,manifest", RAYSERVICES, ids=[n for n, _ in RAYSERVICES])
def test_worker_groups_hold_every_deployment_at_max_replicas(name, manifest):
    """The autoscaler can only reach max_replicas if the groups' maxReplicas pods fit them."""
    groups = manifest["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    capacity: dict[str, float] = {}
    for group in groups:
        params = group["rayStartParams"]
        capacity["CPU"] = capacity.get("CPU", 0) + group["maxReplicas"] * float(params["num-cpus"])
        capacity["GPU"] = capacity.get("GPU", 0) + group["maxReplicas"] * float(params["num-gpus"])
        assert group["replicas"] == group["minReplicas"] <= group["maxReplicas"]
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert float(limits["cpu"]) > float(params["num-cpus"]), "no CPU left for Ray itself"
    apps = _serve_config(manifest)["applications"]
    needed = {"CPU": 0.0, "GPU": 0.0}
    for app in apps:
        for deployment in render.app_deployments(app):
            needs = replica_needs(deployment)
            needed["CPU"] += needs.max_replicas * needs.cpus
            needed["GPU"] += needs.max_replicas * needs.gpus
    assert all(capacity[k] >= needed[k] for k in needed), (capacity, needed)


def test_head_runs_no_replicas_and_exposes_serve():
    for _, manifest in RAYSERVICES:
        head = manifest["spec"]["rayClusterConfig"]["headGroupSpec"]
        assert head["rayStartParams"]["num-cpus"] == "0"
        ports = {
            p["name"]: p["containerPort"]
            for p in head["template"]["spec"]["containers"][0]["ports"]
        }
        assert ports["serve"] == 8000 and ports["dashboard"] == 8265 and ports["metrics"] == 8080


def test_api_keys_come_from_the_example_secret():
    secret = next(d for n, d in DOCUMENTS if d["kind"] == "Secret")
    for _, manifest in RAYSERVICES:
        for _, template in _pod_templates(manifest):
            env = {e["name"]: e for e in template["spec"]["containers"][0]["env"]}
            ref = env["SONARAY_API_KEYS"]["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret["metadata"]["name"]
            assert ref["key"] in secret["stringData"]


def test_group_size_adds_headroom_for_ray():
    needs = [
        replica_needs({"name": "seq2seq", "ray_actor_options": {"num_cpus": 1, "num_gpus": 0.5},
                       "autoscaling_config": {"min_replicas": 1, "max_replicas": 4}}),
        replica_needs({"name": "tts", "ray_actor_options": {"num_cpus": 0.5, "num_gpus": 0.25}}),
    ]  # fmt: skip
    size = size_group(needs, gpus_per_pod=1)
    assert (size.ray_cpus, size.ray_gpus, size.min_pods, size.max_pods) == (2, 1, 1, 3)
    assert size.container_resources() == {"cpu": "3", "memory": "8Gi", "nvidia.com/gpu": "1"}


def test_auto_replicas_without_a_maximum_is_refused():
    with pytest.raises(ConfigError, match="max_replicas"):
        replica_needs({"name": "tts", "num_replicas": "auto"})


def test_cpu_variant_refuses_deployments_that_ask_for_gpus():
    config = render.load_serve_config(SERVE_CONFIG)
    seq2seq = config["applications"][0]["deployments"][1]
    seq2seq.setdefault("ray_actor_options", {"num_cpus": 1})["num_gpus"] = 0.5
    with pytest.raises(ConfigError, match="num_gpus"):
        render.render(config, gpu=False)


def test_unknown_deployment_in_serve_config_is_refused():
    config = render.load_serve_config(SERVE_CONFIG)
    config["applications"][0]["deployments"].append({"name": "Rooter"})
    with pytest.raises(ConfigError, match="Rooter"):
        render.render(config, gpu=True)


@pytest.mark.parametrize("name,manifest", RAYSERVICES, ids=[n for n, _ in RAYSERVICES])
def test_serve_config_v2_builds_the_sonaray_app(name, manifest):
    from ray.serve import Application

    from deployments.app import build_app, parse_args

    for app in _serve_config(manifest)["applications"]:
        assert isinstance(build_app(app["args"]), Application)
        if name == "rayservice-gpu.yaml":
            # Every deployment the app runs is placed explicitly, none left to chance.
            tasks = parse_args(app["args"]).tasks
            assert set(_deployments(manifest)) == {"Router", "LoadBoard", *tasks}


def test_api_keys_env_follows_the_apps_auth_config():
    config = render.load_serve_config(SERVE_CONFIG)
    config["applications"][0]["args"]["auth"] = {"api_keys_env": "TEAM_KEYS"}
    manifest = render.render(config, gpu=False)
    for _, template in _pod_templates(manifest):
        assert [e["name"] for e in template["spec"]["containers"][0]["env"]] == ["TEAM_KEYS"]


def test_every_pod_drains_before_it_stops_within_its_grace_period():
    for _, manifest in RAYSERVICES:
        cluster = manifest["spec"]["rayClusterConfig"]
        serve = yaml.safe_load(manifest["spec"]["serveConfigV2"])
        grace = max(  # what Serve gives a stopping replica (its default: 20 s)
            d.get("graceful_shutdown_timeout_s", 20)
            for app in serve["applications"]
            for d in render.app_deployments(app)
        )
        groups = [("head", cluster["headGroupSpec"])] + [
            ("worker", g) for g in cluster["workerGroupSpecs"]
        ]
        for kind, group in groups:
            pod = group["template"]["spec"]
            command = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
            assert command[:3] == ["python", "-m", "deployments.drain"]
            assert ("--node" in command) == (kind == "worker")  # a worker drains only itself
            drain = float(command[command.index("--grace-seconds") + 1])
            # The drain may take the replicas' whole graceful shutdown, and Ray must still
            # have time to stop before Kubernetes kills the pod.
            assert drain >= grace
            assert pod["terminationGracePeriodSeconds"] > drain
