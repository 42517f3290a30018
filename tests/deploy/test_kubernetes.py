"""The Kubernetes manifests (deploy/k8s), checked where no cluster runs: rendered as kustomize
renders them, validated against the Kubernetes API's JSON schemas (kubernetes-validate bundles
them, so nothing is fetched) and, for the Gateway API, against the subset in gateway_api.py; then
what an operator relies on: Pod Security "restricted", probes, draining, disruption budgets,
spreading, autoscaling, the connection budget of PostgreSQL, secrets by need and the network
policies."""

import re
import subprocess
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy import gateway_api, pod_security
from tests.deploy.network_policy import can_connect, outside, pod
from tests.deploy.support import (
    K8S,
    PORTS,
    SERVICES,
    containers,
    documents,
    find,
    kustomization,
    pod_spec,
    program,
    render,
)

try:
    import kubernetes_validate
except ImportError:  # the failure says what to install; the other tests still run
    kubernetes_validate = None

# The oldest Kubernetes minor still supported upstream when this was written, and the newest
# that kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.31", "latest")
EXAMPLES = ("secret.example.yaml", "gateway.example.yaml", "database-access.example.yaml")
# A small managed PostgreSQL: 100 connections, of which 3 are the superuser's and 17 are kept
# for migrations, an operator's psql, backups and monitoring (configmap.yaml).
POSTGRES_BUDGET = 100 - 3 - 17
# Services with an outbox relay, which holds one connection of its own beside the pool.
WITH_RELAY = {"auth", "tickets", "notifier"}
# aiohttp's graceful stop, then at most 10 s for each resource that stops with a time limit.
WORST_SHUTDOWN = {"auth": 10 + 3 * 10, "tickets": 10 + 3 * 10, "notifier": 10 + 3 * 10}
WORST_SHUTDOWN["panel"] = 10 + 10


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return render()


def deployment(rendered: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return find(rendered, "Deployment", name)


def main_container(rendered: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(c for c in containers(deployment(rendered, name)) if c["name"] == name)


def test_kustomization_lists_every_manifest() -> None:
    listed = kustomization()["resources"]
    for resource in listed:
        assert (K8S / resource).exists(), resource
    assert {f"{name}.yaml" for name in SERVICES} <= set(listed)
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert files == set(listed) | set(EXAMPLES), "a manifest is neither applied nor an example"
    assert not set(listed) & set(EXAMPLES)


def test_kubectl_kustomize_renders_what_the_tests_check(rendered: list[dict[str, Any]]) -> None:
    """The tests read the kustomization through render(); kubectl's own kustomize must agree."""
    kubectl = program(
        "kubectl", "`make test` installs it (Debian package kubernetes-client, /usr/bin/kubectl)"
    )
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    theirs = [d for d in yaml.safe_load_all(result.stdout) if d]

    def key(d: dict[str, Any]) -> tuple[str, str, str]:
        return d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]

    assert sorted(theirs, key=key) == sorted(rendered, key=key)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_match_the_kubernetes_api_schemas(
    rendered: list[dict[str, Any]], version: str
) -> None:
    assert kubernetes_validate is not None, (
        "kubernetes-validate is missing: add `kubernetes-validate==1.37.0` to the dev extras of "
        "pyproject.toml"
    )
    if version == "latest":
        version = kubernetes_validate.utils.latest_version()
    examples = [d for name in EXAMPLES for d in documents(K8S / name)]
    checked = 0
    for document in rendered + examples:
        if document["kind"] in gateway_api.SCHEMAS:
            continue
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path)
            pytest.fail(
                f"{document['kind']} {document['metadata']['name']}: {where}: {exc.message}"
            )
        checked += 1
    assert checked >= 20


def test_the_schema_validation_refuses_a_misspelled_field(rendered: list[dict[str, Any]]) -> None:
    """So that a green schema test means something: strict validation refuses unknown fields."""
    assert kubernetes_validate is not None, (
        "kubernetes-validate is missing: add `kubernetes-validate==1.37.0` to the dev extras of "
        "pyproject.toml"
    )
    broken = yaml.safe_load(yaml.safe_dump(deployment(rendered, "auth")))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.utils.latest_version(), True)


def test_gateway_api_objects_match_their_schema(rendered: list[dict[str, Any]]) -> None:
    objects = [d for d in rendered if d["kind"] in gateway_api.SCHEMAS]
    objects += [d for d in documents(K8S / "gateway.example.yaml") if d["kind"] == "Gateway"]
    assert {d["kind"] for d in objects} == {"HTTPRoute", "Gateway"}
    for document in objects:
        gateway_api.validate(document)
    broken = yaml.safe_load(yaml.safe_dump(find(rendered, "HTTPRoute", "helpdesk")))
    broken["spec"]["rules"][1]["backendRef"] = broken["spec"]["rules"][1].pop("backendRefs")
    with pytest.raises(jsonschema.ValidationError):
        gateway_api.validate(broken)


def test_the_namespace_enforces_pod_security_restricted(rendered: list[dict[str, Any]]) -> None:
    labels = find(rendered, "Namespace", "helpdesk")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert all(
        d["metadata"].get("namespace") == "helpdesk" for d in rendered if d["kind"] != "Namespace"
    )


def test_every_pod_template_passes_pod_security_restricted(rendered: list[dict[str, Any]]) -> None:
    templates = [d for d in rendered if pod_spec(d) is not None]
    assert {d["metadata"]["name"] for d in templates} == set(SERVICES)
    for document in templates:
        spec = pod_spec(document)
        assert pod_security.violations(spec) == [], document["metadata"]["name"]
        assert isinstance(spec["securityContext"]["runAsUser"], int)
        for container in containers(document):
            assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_pod_security_check_refuses_what_restricted_refuses(
    rendered: list[dict[str, Any]],
) -> None:
    spec = yaml.safe_load(yaml.safe_dump(pod_spec(deployment(rendered, "auth"))))
    context = spec["containers"][0]["securityContext"]
    del context["capabilities"]
    context["allowPrivilegeEscalation"] = True
    del spec["securityContext"]["seccompProfile"]
    spec["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    found = " ".join(pod_security.violations(spec))
    for control in ("capabilities", "privilege escalation", "seccomp", "hostPath"):
        assert control in found


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_has_a_deployment_with_probes_and_a_service(
    rendered: list[dict[str, Any]], name: str
) -> None:
    document = deployment(rendered, name)
    spec = document["spec"]
    template = spec["template"]
    container = main_container(rendered, name)
    assert container["command"] == ["python", "-m", f"services.{name}"]
    assert container["image"] == "registry.example.com/helpdesk:0.1.0"
    port = PORTS[name]
    assert {"name": "http", "containerPort": port} in container["ports"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": port}
    sources = {next(iter(s)): s[next(iter(s))]["name"] for s in container["envFrom"]}
    assert sources == {"configMapRef": "helpdesk-settings", "secretRef": f"{name}-secrets"}
    assert "env" not in container
    assert template["metadata"]["labels"]["app"] == name
    assert spec["selector"] == {"matchLabels": {"app": name}}
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    service = find(rendered, "Service", name)
    assert service["spec"]["selector"] == {"app": name}
    assert service["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]


@pytest.mark.parametrize("name", SERVICES)
def test_pods_drain_before_they_stop(rendered: list[dict[str, Any]], name: str) -> None:
    spec = pod_spec(deployment(rendered, name))
    container = main_container(rendered, name)
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    drain = int(command[1])
    assert 3 <= drain <= 15
    assert spec["terminationGracePeriodSeconds"] > drain + WORST_SHUTDOWN[name]
    # Service links would set AUTH_PORT=tcp://..., TICKETS_PORT=... in every pod: settings.
    assert spec["enableServiceLinks"] is False
    assert spec["automountServiceAccountToken"] is False


@pytest.mark.parametrize("name", SERVICES)
def test_replicas_survive_disruptions_and_spread(rendered: list[dict[str, Any]], name: str) -> None:
    budget = find(rendered, "PodDisruptionBudget", name)["spec"]
    assert budget["selector"] == {"matchLabels": {"app": name}}
    assert budget.get("maxUnavailable") == 1 or budget.get("minAvailable") == 1
    keys = {
        c["topologyKey"] for c in pod_spec(deployment(rendered, name))["topologySpreadConstraints"]
    }
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert replicas(rendered, name)[0] >= 2


def replicas(rendered: list[dict[str, Any]], name: str) -> tuple[int, int]:
    """(fewest, most) pods of a service, from its HPA if it has one."""
    autoscalers = [
        d
        for d in rendered
        if d["kind"] == "HorizontalPodAutoscaler" and d["spec"]["scaleTargetRef"]["name"] == name
    ]
    if autoscalers:
        assert "replicas" not in deployment(rendered, name)["spec"], "the HPA owns the count"
        spec = autoscalers[0]["spec"]
        return spec["minReplicas"], spec["maxReplicas"]
    count = deployment(rendered, name)["spec"]["replicas"]
    return count, count


def test_tickets_and_the_panel_scale_with_their_load(rendered: list[dict[str, Any]]) -> None:
    autoscaled = {
        d["spec"]["scaleTargetRef"]["name"]
        for d in rendered
        if d["kind"] == "HorizontalPodAutoscaler"
    }
    assert autoscaled == {"tickets", "panel"}
    for name in autoscaled:
        assert main_container(rendered, name)["resources"]["requests"]["cpu"]


def test_all_pools_together_fit_a_small_managed_postgresql(rendered: list[dict[str, Any]]) -> None:
    settings = find(rendered, "ConfigMap", "helpdesk-settings")["data"]
    total = 0
    for name in SERVICES:
        pool = int(settings[f"{name.upper()}_DB_POOL_MAX"])
        surge = deployment(rendered, name)["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
        pods = replicas(rendered, name)[1] + surge
        total += pods * (pool + (1 if name in WITH_RELAY else 0))
    assert total <= POSTGRES_BUDGET
    # configmap.yaml states the same sum, for the reader.
    assert re.search(rf"total\s+{total} <= {POSTGRES_BUDGET}", (K8S / "configmap.yaml").read_text())


def test_the_configmap_holds_no_secret(rendered: list[dict[str, Any]]) -> None:
    settings = find(rendered, "ConfigMap", "helpdesk-settings")["data"]
    for key, value in settings.items():
        assert not re.search(r"DATABASE_URL|AMQP_URL|PASSWORD|SECRET|_KEY", key), key
        assert "://" not in value or "@" not in value, key


def test_each_service_gets_only_its_own_secrets() -> None:
    secrets = {
        d["metadata"]["name"]: d["stringData"] for d in documents(K8S / "secret.example.yaml")
    }
    assert set(secrets) == {f"{name}-secrets" for name in SERVICES}
    for name in SERVICES:
        keys = set(secrets[f"{name}-secrets"])
        assert f"{name.upper()}_DATABASE_URL" in keys
        others = {f"{other.upper()}_DATABASE_URL" for other in SERVICES if other != name}
        assert not keys & others, name
        assert ("AUTH_SIGNING_KEY_PEM" in keys) == (name == "auth")
        assert ("HELPDESK_AMQP_URL" in keys) == (name != "panel")
        assert ("HELPDESK_PANEL_KEY" in keys) == (name in ("tickets", "panel"))
        url = secrets[f"{name}-secrets"][f"{name.upper()}_DATABASE_URL"]
        assert url.startswith(f"postgresql://helpdesk_{name}:"), "each service its own role"
    assert set(secrets["panel-secrets"]) == {
        "PANEL_DATABASE_URL",
        "PANEL_COOKIE_SECRET",
        "HELPDESK_PANEL_KEY",
    }


def test_inbound_email_has_a_load_balancer_that_keeps_the_senders_address(
    rendered: list[dict[str, Any]],
) -> None:
    service = find(rendered, "Service", "inbound-smtp")["spec"]
    assert service["type"] == "LoadBalancer"
    assert service["externalTrafficPolicy"] == "Local"
    assert service["selector"] == {"app": "notifier"}
    assert service["ports"] == [
        {"name": "smtp", "port": 25, "targetPort": "smtp", "protocol": "TCP"}
    ]
    assert {"name": "smtp", "containerPort": 2525} in main_container(rendered, "notifier")["ports"]


def test_the_public_routes_keep_operational_routes_inside(rendered: list[dict[str, Any]]) -> None:
    route = find(rendered, "HTTPRoute", "helpdesk")["spec"]
    assert route["parentRefs"][0]["sectionName"] == "https"
    denied = [r for r in route["rules"] if not r.get("backendRefs") and not r.get("filters")]
    assert len(denied) == 1
    exact = {m["path"]["value"] for m in denied[0]["matches"] if m["path"]["type"] == "Exact"}
    for prefix in ("", "/api/auth", "/api/tickets"):
        for path in ("/metrics", "/readyz", "/healthz", "/openapi.json"):
            assert prefix + path in exact
    forwarded = {
        r["matches"][0]["path"]["value"]: (r["backendRefs"][0], r.get("filters", []))
        for r in route["rules"]
        if r.get("backendRefs")
    }
    strip = [
        {
            "type": "URLRewrite",
            "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
        }
    ]
    assert forwarded == {
        "/api/auth": ({"name": "auth", "port": 8081}, strip),
        "/api/tickets": ({"name": "tickets", "port": 8082}, strip),
        "/": ({"name": "panel", "port": 8080}, []),
    }
    redirect = find(rendered, "HTTPRoute", "helpdesk-http-redirect")["spec"]
    assert redirect["rules"][0]["filters"][0]["requestRedirect"]["scheme"] == "https"


# Who may reach whom: pods of the helpdesk namespace, the Gateway's data plane, Prometheus,
# another application's pod, and a mail server on the internet.
HELPDESK = {
    name: pod(
        "helpdesk", f"10.244.0.{i + 10}", app=name, **{"app.kubernetes.io/part-of": "helpdesk"}
    )
    for i, name in enumerate(SERVICES)
}
GATEWAY = pod("gateway-infra", "10.244.1.5", app="envoy")
PROMETHEUS = pod("monitoring", "10.244.2.5", app="prometheus")
STRANGER = pod("shop", "10.244.3.5", app="shop")
INTERNET = outside("203.0.113.25")


@pytest.fixture(scope="module")
def policies(rendered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in rendered if d["kind"] == "NetworkPolicy"]


@pytest.mark.parametrize(
    ("source", "target", "port", "allowed"),
    [
        (GATEWAY, "panel", 8080, True),
        (GATEWAY, "auth", 8081, True),
        (GATEWAY, "tickets", 8082, True),
        (GATEWAY, "notifier", 8083, False),
        (STRANGER, "panel", 8080, False),
        (STRANGER, "auth", 8081, False),
        (INTERNET, "panel", 8080, False),
        (INTERNET, "notifier", 2525, True),
        (INTERNET, "notifier", 8083, False),
        (HELPDESK["panel"], "auth", 8081, True),
        (HELPDESK["panel"], "tickets", 8082, True),
        (HELPDESK["tickets"], "auth", 8081, True),
        (HELPDESK["notifier"], "auth", 8081, True),
        (HELPDESK["tickets"], "panel", 8080, False),
        (HELPDESK["auth"], "tickets", 8082, False),
        (HELPDESK["notifier"], "tickets", 8082, False),
        (PROMETHEUS, "tickets", 8082, True),
        (PROMETHEUS, "notifier", 8083, True),
    ],
)
def test_network_policies_let_in_only_who_needs_it(
    policies: list[dict[str, Any]], source: Any, target: str, port: int, allowed: bool
) -> None:
    assert can_connect(policies, source, HELPDESK[target], port) is allowed


@pytest.mark.parametrize(
    ("name", "port", "allowed"),
    [
        ("auth", 5432, True),
        ("tickets", 5432, True),
        ("notifier", 5432, True),
        ("panel", 5432, True),
        ("auth", 5671, True),
        ("notifier", 5672, True),
        ("panel", 5671, False),
        ("panel", 5672, False),
        ("notifier", 587, True),
        ("tickets", 587, False),
        ("panel", 443, False),
    ],
)
def test_only_the_services_reach_postgresql_and_rabbitmq(
    policies: list[dict[str, Any]], name: str, port: int, allowed: bool
) -> None:
    database = outside("192.0.2.10")
    assert can_connect(policies, HELPDESK[name], database, port) is allowed
    other = pod("helpdesk", "10.244.0.99", app="debug-shell")
    assert not can_connect(policies, other, database, port)
