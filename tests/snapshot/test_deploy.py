"""The deploy files parse, say what the design needs, and every command in them is one the CLI accepts."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from cluster.settings import ENV_PREFIX, Settings
from pipeline.cli import parser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
K8S = sorted((DEPLOY / "k8s").glob("*.yaml"))


def commands_in(command: Any) -> Iterator[list[str]]:
    """Each program invocation of a container command: exec form, or ``sh -c "a && exec b"``."""
    if command is None:
        return
    argv = shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]
    if argv[:2] == ["sh", "-c"]:
        for part in argv[2].split("&&"):
            words = shlex.split(part)
            yield words[1:] if words[:1] == ["exec"] else words
    else:
        yield argv


def check_command(argv: list[str]) -> None:
    if argv[0] == "ethercattle":
        try:
            parser().parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"the CLI refuses {shlex.join(argv)}")
    elif argv[0] == "faust":
        assert argv[1:6] == ["-L", "uvloop", "-A", "pipeline", "worker"], argv  # workers run on uvloop
    elif argv[0] not in ("python", "CMD", "CMD-SHELL"):
        pytest.fail(f"unexpected program {argv[0]!r}")


def check_settings(names: Iterator[str]) -> None:
    """Settings ignore unknown variables, so a misspelt one would be silently dropped: every name must be a field."""
    for name in names:
        if name.startswith(ENV_PREFIX):
            assert name[len(ENV_PREFIX):].lower() in Settings.model_fields, f"{name} is not a setting"


def load_all(text: str) -> list[Any]:
    """Every document of a YAML stream (empty ones left out)."""
    return [document for document in yaml.safe_load_all(text) if document is not None]


def compose() -> dict[str, Any]:
    (document,) = load_all(COMPOSE.read_text())
    return document


def test_compose_runs_apache_kafka_in_kraft_mode_and_every_role_of_a_cluster() -> None:
    services = compose()["services"]
    assert {"kafka", "init", "master", "replica-1", "replica-2", "snapshotter", "emitter"} <= services.keys()
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert services["master"]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert "ETHERCATTLE_EMIT_TARGETS" in services["emitter"]["environment"]
    assert services["snapshotter"]["environment"]["ETHERCATTLE_SNAPSHOT_DIR"] == "/snapshots"
    for name in ("replica-1", "replica-2"):
        (restore, worker) = list(commands_in(services[name]["command"]))
        assert restore[:4] == ["ethercattle", "snapshot", "restore", "--from"] and "--keep-existing" in restore
        assert "/readyz" in " ".join(services[name]["healthcheck"]["test"])


def test_compose_commands_and_settings_are_true_to_the_cli() -> None:
    for name, service in compose()["services"].items():
        for argv in commands_in(service.get("command")):
            check_command(argv)
        check_settings(iter(service.get("environment") or {}))


def k8s_documents() -> list[dict[str, Any]]:
    documents = [document for path in K8S for document in load_all(path.read_text())]
    for document in documents:
        assert {"apiVersion", "kind"} <= document.keys()
        assert document["kind"] == "Kustomization" or document["metadata"]["name"]
    return documents


def containers(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    spec = document.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    for kind in ("initContainers", "containers"):
        for container in pod.get(kind) or []:
            yield kind, container


def test_k8s_replicas_probe_readyz_and_healthz_and_start_from_the_newest_snapshot() -> None:
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in k8s_documents() if d["kind"] != "Kustomization"}
    replica = by_name[("Deployment", "replica")]
    (init,) = replica["spec"]["template"]["spec"]["initContainers"]
    assert init["command"][:5] == ["ethercattle", "snapshot", "restore", "--from", "/snapshots"]
    (worker,) = replica["spec"]["template"]["spec"]["containers"]
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8546}
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8546}
    assert {"name": "data", "emptyDir": {}} in replica["spec"]["template"]["spec"]["volumes"]
    service = by_name[("Service", "rpc")]
    assert service["spec"]["selector"] == replica["spec"]["template"]["metadata"]["labels"]
    master = by_name[("StatefulSet", "master")]
    assert master["spec"]["replicas"] == 1
    (cluster_init,) = master["spec"]["template"]["spec"]["initContainers"]
    assert cluster_init["command"][:3] == ["ethercattle", "cluster", "init"]


def test_k8s_commands_and_settings_are_true_to_the_cli_and_kustomize_lists_every_file() -> None:
    documents = k8s_documents()
    config = next(d for d in documents if d["kind"] == "ConfigMap")
    check_settings(iter(config["data"]))
    for document in documents:
        for _, container in containers(document):
            for argv in commands_in(container.get("command")):
                check_command(argv)
            check_settings(env["name"] for env in container.get("env") or [])
    (kustomization,) = [d for d in documents if d["kind"] == "Kustomization"]
    assert sorted(kustomization["resources"]) == sorted(p.name for p in K8S if p.name != "kustomization.yaml")


def test_init_cluster_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(DEPLOY / "init-cluster.sh")], check=True)


def test_compose_load_balancer_checks_readyz_of_every_replica() -> None:
    from deploy.haproxy import Backend, render

    services = compose()["services"]
    replicas = sorted(name for name in services if name.startswith("replica-"))
    expected = render([Backend(name, f"{name}:8546") for name in replicas], bind=":8080", stats_bind=":8404")
    assert (DEPLOY / "compose" / "haproxy.cfg").read_text() == expected
    assert "option httpchk GET /readyz" in expected
    assert set(services["loadbalancer"]["depends_on"]) == set(replicas)
