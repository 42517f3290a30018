"""Kubernetes NetworkPolicy semantics (networking.k8s.io/v1), enough to ask of our manifests who
may open a TCP connection to whom: a pod isolated for a direction by any policy that selects it
accepts only what one of those policies allows; peers are pods (by pod and namespace labels) or
address blocks. Pods also carry an address, so that an ipBlock of 0.0.0.0/0 counts as letting
pods in too, as most network plugins do: the answers err on the side of "reachable"."""

import ipaddress
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Peer:
    address: str
    namespace: str | None = None  # None: outside the cluster
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace} if self.namespace else {}


def pod(namespace: str, address: str, **labels: str) -> Peer:
    return Peer(address=address, namespace=namespace, labels=labels)


def outside(address: str) -> Peer:
    return Peer(address=address)


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _types(policy: dict[str, Any]) -> list[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return spec["policyTypes"]
    return ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]


def _peer_matches(entry: dict[str, Any], peer: Peer, policy_namespace: str) -> bool:
    if "ipBlock" in entry:
        block = entry["ipBlock"]
        address = ipaddress.ip_address(peer.address)
        network = ipaddress.ip_network(block["cidr"])
        if address.version != network.version or address not in network:
            return False
        return not any(address in ipaddress.ip_network(e) for e in block.get("except", []))
    if peer.namespace is None:
        return False
    if "namespaceSelector" in entry:
        if not selects(entry["namespaceSelector"], peer.namespace_labels):
            return False
    elif peer.namespace != policy_namespace:
        return False
    return "podSelector" not in entry or selects(entry["podSelector"], peer.labels)


def _port_matches(ports: list[dict[str, Any]] | None, port: int) -> bool:
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != "TCP":
            continue
        low = p.get("port")
        if (
            low is None
            or low == port
            or (isinstance(low, int) and low <= port <= p.get("endPort", low))
        ):
            return True
    return False


def _allowed(
    policies: list[dict[str, Any]], subject: Peer, other: Peer, port: int, direction: str
) -> bool:
    applying = [
        p
        for p in policies
        if p["metadata"].get("namespace") == subject.namespace
        and direction in _types(p)
        and selects(p["spec"]["podSelector"], subject.labels)
    ]
    if not applying:
        return True
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in applying:
        for rule in policy["spec"].get(key, []):
            peers = rule.get(peers_key)
            namespace = policy["metadata"]["namespace"]
            if (not peers or any(_peer_matches(e, other, namespace) for e in peers)) and (
                _port_matches(rule.get("ports"), port)
            ):
                return True
    return False


def can_connect(policies: list[dict[str, Any]], source: Peer, target: Peer, port: int) -> bool:
    """Whether a TCP connection from source to target's port gets through both ends' policies
    (egress of the source if it is a pod, ingress of the target)."""
    if source.namespace is not None and not _allowed(policies, source, target, port, "Egress"):
        return False
    return target.namespace is None or _allowed(policies, target, source, port, "Ingress")
