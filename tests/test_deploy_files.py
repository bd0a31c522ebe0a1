"""The deploy examples parse, agree with each other, with the Dockerfile, the CLI and the config schema."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from sh2jira import health
from sh2jira.cli import parser
from sh2jira.config import load_config

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
ECS = DEPLOY / "ecs" / "task-definition.json"
REPLICAS = K8S / "replicas"


def load_all() -> dict[Path, list[Any]]:
    """Every YAML / JSON document under deploy/ and docs/, by file."""
    docs: dict[Path, list[Any]] = {}
    for root in (DEPLOY, REPO / "docs"):
        for path in sorted(root.rglob("*")):
            if path.suffix in (".yaml", ".yml"):
                docs[path] = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
            elif path.suffix == ".json":
                docs[path] = [json.loads(path.read_text(encoding="utf-8"))]
    return docs


def k8s_objects() -> dict[str, dict[str, Any]]:
    """Kubernetes objects by kind (each kind appears once in these examples)."""
    out: dict[str, dict[str, Any]] = {}
    for path, docs in load_all().items():
        if K8S in path.parents and REPLICAS not in path.parents:  # the replicas example is a set of its own
            for doc in docs:
                assert doc["kind"] not in out, f"{doc['kind']} defined twice"
                out[doc["kind"]] = doc
    return out


def pod_spec(kind: str) -> dict[str, Any]:
    obj = k8s_objects()[kind]
    template = obj["spec"]["jobTemplate"]["spec"]["template"] if kind == "CronJob" else obj["spec"]["template"]
    spec: dict[str, Any] = template["spec"]
    return spec


def container(kind: str) -> dict[str, Any]:
    containers = pod_spec(kind)["containers"]
    assert len(containers) == 1
    found: dict[str, Any] = containers[0]
    return found


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env", [])}


def ecs() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ECS.read_text(encoding="utf-8"))
    return data


def dockerfile() -> str:
    return (REPO / "Dockerfile").read_text(encoding="utf-8")


def image_uid() -> int:
    found = re.search(r"--uid (\d+)", dockerfile())
    assert found, "the Dockerfile creates its user with a fixed --uid"
    return int(found.group(1))


def entrypoint() -> list[str]:
    found = re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile(), re.M)
    assert found
    value: list[str] = json.loads(found.group(1))
    return value


def config_text() -> str:
    text: str = k8s_objects()["ConfigMap"]["data"]["config.yaml"]
    return text


WORKLOADS = ("CronJob", "Deployment")


def test_every_file_parses_and_the_expected_objects_exist() -> None:
    docs = load_all()
    assert ECS in docs and REPO / "docs" / "iam-policy.json" in docs
    assert all(docs.values()), "no empty files"
    objects = k8s_objects()
    assert set(objects) == {"ConfigMap", "PersistentVolumeClaim", "ServiceAccount", "CronJob", "Deployment",
                            "Service"}
    for obj in objects.values():
        assert obj["apiVersion"] and obj["metadata"]["name"].startswith("sh2jira")
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "sh2jira"


def test_one_image_pinned_to_the_project_version() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    images = {container(kind)["image"] for kind in WORKLOADS}
    images |= {c["image"] for c in ecs()["containerDefinitions"]}
    assert len(images) == 1
    image = images.pop()
    assert image.rsplit(":", 1)[1] == version, "pin the release, never :latest"


@pytest.mark.parametrize("kind, once", [("CronJob", True), ("Deployment", False)])
def test_commands_match_the_image_and_the_cli(kind: str, once: bool) -> None:
    c = container(kind)
    assert c["command"] == entrypoint()
    args = parser().parse_args(c["args"])
    assert (args.command, args.once, args.dry_run) == ("run", once, False)


def test_ecs_command_matches_the_image_and_the_cli() -> None:
    (c,) = ecs()["containerDefinitions"]
    assert c["entryPoint"] == entrypoint()
    args = parser().parse_args(c["command"])
    assert (args.command, args.once) == ("run", False)


@pytest.mark.parametrize("kind", WORKLOADS)
def test_workloads_run_as_the_images_non_root_user(kind: str) -> None:
    pod, c = pod_spec(kind), container(kind)
    ctx = pod["securityContext"]
    assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == image_uid() != 0
    assert ctx["fsGroup"] == image_uid()
    assert ctx["seccompProfile"]["type"] == "RuntimeDefault"
    cctx = c["securityContext"]
    assert cctx["allowPrivilegeEscalation"] is False and cctx["readOnlyRootFilesystem"] is True
    assert cctx["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == k8s_objects()["ServiceAccount"]["metadata"]["name"]


def test_ecs_runs_as_the_images_non_root_user() -> None:
    (c,) = ecs()["containerDefinitions"]
    assert c["user"] == str(image_uid()) and c["readonlyRootFilesystem"] is True


@pytest.mark.parametrize("kind", WORKLOADS)
def test_config_ledger_and_token_are_wired(kind: str, tmp_path: Path) -> None:
    pod, c = pod_spec(kind), container(kind)
    env = env_of(c)
    config_path = PurePosixPath(env["SH2JIRA_CONFIG"]["value"])
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_mount = next(m for m in mounts.values() if PurePosixPath(m["mountPath"]) == config_path.parent)
    assert config_mount["readOnly"] is True
    configmap = k8s_objects()["ConfigMap"]
    assert volumes[config_mount["name"]]["configMap"]["name"] == configmap["metadata"]["name"]
    assert config_path.name in configmap["data"]

    (tmp_path / "config.yaml").write_text(config_text())
    cfg = load_config(tmp_path / "config.yaml")
    ledger_mount = next(m for m in mounts.values() if PurePosixPath(m["mountPath"]) in
                        PurePosixPath(cfg.ledger.path).parents)
    claim = volumes[ledger_mount["name"]]["persistentVolumeClaim"]["claimName"]
    assert claim == k8s_objects()["PersistentVolumeClaim"]["metadata"]["name"]
    assert k8s_objects()["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteOnce"]

    token = env[cfg.jira.token_env]
    assert "value" not in token and token["valueFrom"]["secretKeyRef"]["key"]
    assert mounts["tmp"]["mountPath"] == "/tmp" and "emptyDir" in volumes["tmp"]


def test_cronjob_never_overlaps_and_the_deployment_has_one_writer() -> None:
    cron = k8s_objects()["CronJob"]["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    assert pod_spec("CronJob")["restartPolicy"] in ("Never", "OnFailure")
    deployment = k8s_objects()["Deployment"]["spec"]
    assert deployment["replicas"] == 1 and deployment["strategy"]["type"] == "Recreate"


def test_deployment_exposes_metrics_and_probes_healthz() -> None:
    c, env = container("Deployment"), env_of(container("Deployment"))
    port = int(env["SH2JIRA_METRICS_PORT"]["value"])
    assert port == health.DEFAULT_PORT == 9464
    assert env["SH2JIRA_METRICS_HOST"]["value"] == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": port}
    for probe in ("livenessProbe", "readinessProbe"):
        get = c[probe]["httpGet"]
        assert get["path"] == health.HEALTH_PATH and ports[get["port"]] == port
    pod_meta = k8s_objects()["Deployment"]["spec"]["template"]["metadata"]
    service = k8s_objects()["Service"]
    for scrape in (pod_meta["annotations"], service["metadata"]["annotations"]):
        assert scrape == {"prometheus.io/scrape": "true", "prometheus.io/port": str(port),
                               "prometheus.io/path": health.METRICS_PATH}
    assert service["spec"]["selector"].items() <= pod_meta["labels"].items()
    (svc_port,) = service["spec"]["ports"]
    assert svc_port["targetPort"] == "metrics" and svc_port["port"] == port


def test_ecs_task_is_fargate_with_injected_secret_and_health_check(tmp_path: Path) -> None:
    task = ecs()
    assert task["requiresCompatibilities"] == ["FARGATE"] and task["networkMode"] == "awsvpc"
    (c,) = task["containerDefinitions"]
    env = {e["name"]: e["value"] for e in c["environment"]}
    (tmp_path / "config.yaml").write_text(config_text())
    token_env = load_config(tmp_path / "config.yaml").jira.token_env
    assert token_env not in env
    secrets = {s["name"]: s["valueFrom"] for s in c["secrets"]}
    assert secrets[token_env].startswith("arn:aws:secretsmanager:")
    assert [p["containerPort"] for p in c["portMappings"]] == [int(env["SH2JIRA_METRICS_PORT"])] == [9464]
    assert env["SH2JIRA_METRICS_HOST"] == "0.0.0.0"
    check = c["healthCheck"]
    assert check["command"] == ["CMD", "python", "-m", health.__name__] and check["startPeriod"] > 0
    assert c["stopTimeout"] <= 120  # Fargate's maximum
    volumes = {v["name"] for v in task["volumes"]}
    mounts = {m["containerPath"]: m for m in c["mountPoints"]}
    assert {m["sourceVolume"] for m in mounts.values()} <= volumes
    assert mounts[str(PurePosixPath(env["SH2JIRA_CONFIG"]).parent)]["readOnly"] is True
    assert {"/var/lib/sh2jira", "/tmp"} <= set(mounts)


def test_the_readme_explains_every_file() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file() and path.name != "README.md":
            assert str(path.relative_to(DEPLOY)) in readme, f"deploy/README.md does not mention {path.name}"
    assert "docs/iam-policy.json" in readme


# --- the Dockerfile itself: multi-stage, pinned, cached, lean, non-root, healthy ---

DIGEST = re.compile(r"^[\w./-]+(:[\w.-]+)?@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in dockerfile().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            logical.append(" ".join(pending.split()))
            pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return [Instruction(*(text.split(" ", 1) + [""])[:2]) for text in logical]


def stages() -> list[list[Instruction]]:
    """The instructions grouped by stage; each stage starts with its FROM."""
    out: list[list[Instruction]] = []
    for ins in instructions():
        if ins.keyword.upper() == "FROM":
            out.append([])
        assert out, f"{ins.keyword} before the first FROM"
        out[-1].append(ins)
    return out


def of(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.args for i in stage if i.keyword.upper() == keyword]


def test_dockerfile_is_multi_stage_with_every_base_pinned_by_digest() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2, "a builder stage and a final stage"
    names: set[str] = set()
    for stage in all_stages:
        image, *alias = stage[0].args.split()
        assert image in names or DIGEST.match(image), f"FROM {image}: pin the base image by @sha256 digest"
        if alias:
            assert alias[0].upper() == "AS"
            names.add(alias[1])
    sources = {c.split()[0].removeprefix("--from=") for c in of(all_stages[-1], "COPY") if c.startswith("--from=")}
    assert sources and sources <= names, "the final stage takes what it needs from a named build stage"


def test_dependency_layer_is_built_before_the_source_is_copied() -> None:
    builder = stages()[0]
    copies = [i for i in builder if i.keyword.upper() in ("COPY", "ADD")]
    first = copies[0].args.split()
    assert set(first[:-1]) == {"pyproject.toml", "constraints.txt"}, "copy only what the dependencies depend on"
    source = next(n for n, i in enumerate(builder) if i.keyword.upper() == "COPY" and "sh2jira" in i.args.split())
    deps = [n for n, i in enumerate(builder) if i.keyword.upper() == "RUN" and "pip install" in i.args
            and "-c constraints.txt" in i.args]
    assert deps and deps[0] < source, "install the pinned dependencies before copying the source"
    installs = [i.args for i in builder if i.keyword.upper() == "RUN" and "pip install" in i.args]
    assert installs and all("-c constraints.txt" in run for run in installs)
    assert "PIP_CONSTRAINT=" in " ".join(of(builder, "ENV")), "pin the isolated build environment too"


def test_final_stage_copies_only_the_venv_and_carries_no_pip_or_setuptools() -> None:
    builder, final = stages()[0], stages()[-1]
    copies = of(final, "COPY") + of(final, "ADD")
    assert copies and all(c.startswith("--from=") and c.split()[1:] == ["/opt/venv", "/opt/venv"] for c in copies)
    venv_runs = [run for run in of(builder, "RUN") if "/opt/venv" in run]
    assert re.search(r"pip uninstall --yes pip setuptools", venv_runs[-1]), "the copied venv keeps pip/setuptools"
    assert any(re.search(r"pip uninstall --yes pip setuptools", run) for run in of(final, "RUN")), \
        "the base image's own pip and setuptools stay in the final image"
    final_runs = " ".join(of(final, "RUN"))
    assert "pip install" not in final_runs and "apt-get install" not in final_runs


def test_final_stage_runs_as_a_non_root_user_and_keeps_the_healthcheck() -> None:
    final = stages()[-1]
    users = of(final, "USER")
    assert users and users[-1] not in ("root", "0"), "the container runs as a non-root user"
    assert re.search(rf"useradd .*--uid {image_uid()} .*\b{re.escape(users[-1])}\b", " ".join(of(final, "RUN")))
    (check,) = of(final, "HEALTHCHECK")
    command = json.loads(check.split(" CMD ", 1)[1])
    assert command == [*entrypoint(), "healthcheck"]
    assert parser().parse_args(command[1:]).command == "healthcheck"


def test_dockerignore_keeps_the_context_to_what_the_image_needs() -> None:
    ignore = REPO / ".dockerignore"
    assert ignore.is_file()
    patterns = {line.strip() for line in ignore.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "tests", "bench", ".pytest_cache", ".mypy_cache", "**/__pycache__"} <= patterns
    copied = {word for args in of(stages()[0], "COPY") for word in args.split()[:-1]}
    assert copied == {"pyproject.toml", "constraints.txt", "README.md", "LICENSE", "sh2jira"}
    assert not copied & patterns, "the Dockerfile copies a file .dockerignore leaves out"


def test_the_replicas_example_runs_two_replicas_on_the_dynamodb_ledger_without_a_volume(tmp_path: Path) -> None:
    docs = {d["kind"]: d for d in load_all()[REPLICAS / "deployment.yaml"]}
    assert set(docs) == {"ConfigMap", "Deployment", "PodDisruptionBudget"}
    (tmp_path / "config.yaml").write_text(docs["ConfigMap"]["data"]["config.yaml"])
    cfg = load_config(tmp_path / "config.yaml")
    assert cfg.ledger.backend == "dynamodb" and cfg.ledger.endpoint_url is None and cfg.ledger.lease_ttl() == 60
    spec = docs["Deployment"]["spec"]
    assert spec["replicas"] == 2 and docs["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    pod = spec["template"]["spec"]
    assert not any("persistentVolumeClaim" in v for v in pod["volumes"])
    (c,) = pod["containers"]
    assert c["command"] == container("Deployment")["command"] and c["args"] == ["run"]
    assert c["image"] == container("Deployment")["image"]
    assert pod["securityContext"]["runAsUser"] == image_uid() and c["securityContext"]["readOnlyRootFilesystem"]
