"""A JSON schema for the part of the Gateway API (gateway.networking.k8s.io/v1, standard channel)
that our manifests use, with its CRDs' limits and its CEL rules for those fields: the Kubernetes
schemas that kubernetes-validate bundles have no CRDs, and the CRDs themselves are not
downloadable here. Written from the API reference (apis/v1/*_types.go of
kubernetes-sigs/gateway-api); a field this subset does not know is refused, so a new field in our
manifests means extending it, from that reference."""

from typing import Any

import jsonschema

NAME = {"type": "string", "minLength": 1, "maxLength": 253}
SECTION_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 253,
    "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
}
HOSTNAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 253,
    "pattern": r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
GROUP = {"type": "string", "maxLength": 253}
KIND = {
    "type": "string",
    "minLength": 1,
    "maxLength": 63,
    "pattern": r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$",
}
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}


def strict(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


METADATA = strict(
    {"name": NAME, "namespace": NAME, "labels": LABELS, "annotations": LABELS}, ("name",)
)
PARENT_REF = strict(
    {
        "group": GROUP,
        "kind": KIND,
        "namespace": NAME,
        "name": NAME,
        "sectionName": SECTION_NAME,
        "port": PORT,
    },
    ("name",),
)
PATH_MATCH = strict(
    {
        "type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
        "value": {"type": "string", "maxLength": 1024, "pattern": "^/"},
    }
)
PATH_MODIFIER = strict(
    {
        "type": {"enum": ["ReplaceFullPath", "ReplacePrefixMatch"]},
        "replaceFullPath": {"type": "string", "maxLength": 1024},
        "replacePrefixMatch": {"type": "string", "maxLength": 1024},
    },
    ("type",),
)
FILTER = strict(
    {
        "type": {
            "enum": [
                "RequestHeaderModifier",
                "ResponseHeaderModifier",
                "RequestMirror",
                "RequestRedirect",
                "URLRewrite",
                "ExtensionRef",
            ]
        },
        "urlRewrite": strict({"hostname": HOSTNAME, "path": PATH_MODIFIER}),
        "requestRedirect": strict(
            {
                "scheme": {"enum": ["http", "https"]},
                "hostname": HOSTNAME,
                "path": PATH_MODIFIER,
                "port": PORT,
                "statusCode": {"enum": [301, 302]},
            }
        ),
    },
    ("type",),
)
BACKEND_REF = strict(
    {
        "group": GROUP,
        "kind": KIND,
        "name": NAME,
        "namespace": NAME,
        "port": PORT,
        "weight": {"type": "integer", "minimum": 0, "maximum": 1000000},
    },
    ("name",),
)
RULE = strict(
    {
        "name": SECTION_NAME,
        "matches": {
            "type": "array",
            "maxItems": 64,
            "items": strict({"path": PATH_MATCH}),
        },
        "filters": {"type": "array", "maxItems": 16, "items": FILTER},
        "backendRefs": {"type": "array", "maxItems": 16, "items": BACKEND_REF},
    }
)
HTTP_ROUTE = strict(
    {
        "apiVersion": {"const": "gateway.networking.k8s.io/v1"},
        "kind": {"const": "HTTPRoute"},
        "metadata": METADATA,
        "spec": strict(
            {
                "parentRefs": {"type": "array", "maxItems": 32, "items": PARENT_REF},
                "hostnames": {"type": "array", "maxItems": 16, "items": HOSTNAME},
                "rules": {"type": "array", "minItems": 1, "maxItems": 16, "items": RULE},
            }
        ),
    },
    ("apiVersion", "kind", "metadata", "spec"),
)
ROUTE_NAMESPACES = strict(
    {
        "from": {"enum": ["All", "Selector", "Same"]},
        "selector": strict({"matchLabels": LABELS}),
    }
)
LISTENER = strict(
    {
        "name": SECTION_NAME,
        "hostname": HOSTNAME,
        "port": PORT,
        "protocol": {"type": "string", "minLength": 1, "maxLength": 255},
        "tls": strict(
            {
                "mode": {"enum": ["Terminate", "Passthrough"]},
                "certificateRefs": {
                    "type": "array",
                    "maxItems": 64,
                    "items": strict(
                        {"group": GROUP, "kind": KIND, "name": NAME, "namespace": NAME}, ("name",)
                    ),
                },
            }
        ),
        "allowedRoutes": strict({"namespaces": ROUTE_NAMESPACES}),
    },
    ("name", "port", "protocol"),
)
GATEWAY = strict(
    {
        "apiVersion": {"const": "gateway.networking.k8s.io/v1"},
        "kind": {"const": "Gateway"},
        "metadata": METADATA,
        "spec": strict(
            {
                "gatewayClassName": SECTION_NAME,
                "listeners": {"type": "array", "minItems": 1, "maxItems": 64, "items": LISTENER},
            },
            ("gatewayClassName", "listeners"),
        ),
    },
    ("apiVersion", "kind", "metadata", "spec"),
)
SCHEMAS = {"HTTPRoute": HTTP_ROUTE, "Gateway": GATEWAY}


def validate(document: dict[str, Any]) -> None:
    """Raises jsonschema.ValidationError or AssertionError (a CEL rule of the CRDs) when the
    document would be refused by the API server."""
    jsonschema.validate(document, SCHEMAS[document["kind"]])
    if document["kind"] == "HTTPRoute":
        _http_route_rules(document["spec"].get("rules", []))
    else:
        names = [listener["name"] for listener in document["spec"]["listeners"]]
        assert len(names) == len(set(names)), "Listener name must be unique within the Gateway"


def _http_route_rules(rules: list[dict[str, Any]]) -> None:
    total = sum(len(rule.get("matches", [])) for rule in rules)
    assert total <= 128, "the total number of matches across all rules must be less than 128"
    for rule in rules:
        filters = rule.get("filters", [])
        kinds = [f["type"] for f in filters]
        assert len(kinds) == len(set(kinds)), "a filter cannot be repeated"
        assert not {"RequestRedirect", "URLRewrite"} <= set(kinds), (
            "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite"
        )
        if rule.get("backendRefs"):
            assert "RequestRedirect" not in kinds, (
                "RequestRedirect filter must not be used together with backendRefs"
            )
        for f in filters:
            body = f.get("urlRewrite") or f.get("requestRedirect") or {}
            if (body.get("path") or {}).get("type") == "ReplacePrefixMatch":
                matches = rule.get("matches", [])
                assert len(matches) == 1 and matches[0]["path"]["type"] == "PathPrefix", (
                    "When using ReplacePrefixMatch, exactly one PathPrefix match must be specified"
                )
            expected = {"URLRewrite": "urlRewrite", "RequestRedirect": "requestRedirect"}
            if f["type"] in expected:
                assert expected[f["type"]] in f, f"filter {f['type']} needs its configuration"
