"""What the deployment tests share: the repository's paths, the tools they run (a missing one
fails the test with what to install, never skips it) and the kustomization rendered in Python."""

import copy
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SERVICES = ("auth", "tickets", "notifier", "panel")
PORTS = {"auth": 8081, "tickets": 8082, "notifier": 8083, "panel": 8080}
# Kinds that live outside any namespace (kustomize leaves them without one).
CLUSTER_SCOPED = {"Namespace", "GatewayClass", "ClusterRole", "ClusterRoleBinding"}


def program(name: str, how_to_install: str) -> str:
    """The path of a program the tests need, looked for on PATH, in the venv and in the sbin
    directories (Debian puts nginx there, outside a normal user's PATH)."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join([os.environ.get("PATH", ""), venv_bin, "/usr/sbin", "/sbin"])
    found = shutil.which(name, path=path)
    if found is None:
        pytest.fail(f"{name} is missing: {how_to_install}", pytrace=False)
    return found


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def kustomization(directory: Path = K8S) -> dict[str, Any]:
    return yaml.safe_load((directory / "kustomization.yaml").read_text())


def render(directory: Path = K8S) -> list[dict[str, Any]]:
    """What `kubectl kustomize` makes of our kustomization, which uses only its resources, its
    namespace and its images: every resource, in the namespace, with the image replaced."""
    config = kustomization(directory)
    unknown = set(config) - {"apiVersion", "kind", "namespace", "resources", "images"}
    assert not unknown, f"render() does not know these kustomization fields yet: {unknown}"
    images = {i["name"]: i for i in config.get("images", [])}
    rendered = []
    for resource in config["resources"]:
        for document in documents(directory / resource):
            document = copy.deepcopy(document)
            if document["kind"] not in CLUSTER_SCOPED and "namespace" in config:
                document["metadata"]["namespace"] = config["namespace"]
            for container in containers(document):
                name = container["image"].split(":")[0].split("@")[0]
                if name in images:
                    container["image"] = image_reference(images[name], container["image"])
            rendered.append(document)
    return rendered


def image_reference(rule: dict[str, str], image: str) -> str:
    name = rule.get("newName", image.split(":")[0].split("@")[0])
    if "digest" in rule:
        return f"{name}@{rule['digest']}"
    return f"{name}:{rule['newTag']}" if "newTag" in rule else name


def pod_spec(document: dict[str, Any]) -> dict[str, Any] | None:
    if document["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        return document["spec"]["template"]["spec"]
    if document["kind"] == "CronJob":
        return document["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if document["kind"] == "Pod":
        return document["spec"]
    return None


def containers(document: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(document)
    if spec is None:
        return []
    kinds = ("initContainers", "containers", "ephemeralContainers")
    return [c for kind in kinds for c in spec.get(kind, [])]


def find(rendered: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in rendered if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]
