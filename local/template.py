"""Read template.yaml the way CloudFormation would, enough for the local stack.

The local stack builds its table, bucket, queues, key and secret, and each function's
environment, from the template's own definitions, so it cannot drift from what `sam deploy`
creates. Intrinsics are resolved against the template's parameter defaults and the physical ids
of what the local stack provisioned.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
# The local stack's values for the parameters a deploy must supply (no Default in the template).
# XClientId is the client local.stack registers with the X sandbox (its CLIENT_ID).
LOCAL_PARAMETERS = {"XClientId": "local-client"}


class _Loader(yaml.SafeLoader):
    pass


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_Loader.add_multi_constructor("!", _intrinsic)


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    assert isinstance(document, dict)
    return document


@dataclass
class Resolver:
    """Evaluates Ref, GetAtt, Sub, If, Equals, Not, Join, Select for local use."""

    template: dict[str, Any]
    physical: dict[str, str] = field(default_factory=dict)  # logical id -> Ref value
    attributes: dict[str, str] = field(default_factory=dict)  # "Logical.Attr" -> value
    pseudo: Mapping[str, str] = field(
        default_factory=lambda: {
            "AWS::Region": "us-east-1",
            "AWS::AccountId": "123456789012",
            "AWS::StackName": "x-metrics-local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
    )
    overrides: Mapping[str, str] = field(default_factory=dict)  # parameter overrides

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.overrides:
            return self.overrides[name]
        params = self.template.get("Parameters", {})
        if name in params:
            if "Default" in params[name]:
                return params[name]["Default"]
            if name in LOCAL_PARAMETERS:
                return LOCAL_PARAMETERS[name]
            raise KeyError(
                f"template.yaml: parameter {name} has no Default; give it a LOCAL_PARAMETERS value"
            )
        if name in self.physical:
            return self.physical[name]
        raise KeyError(f"template.yaml: nothing local for Ref {name}")

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def resolve(self, value: Any) -> Any:  # noqa: C901 - one branch per intrinsic
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(v) for k, v in value.items()}
        ((key, arg),) = value.items()
        if key == "Ref":
            return self.ref(arg)
        if key == "Fn::GetAtt":
            logical, attr = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self.attributes[f"{logical}.{attr}"]
        if key == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(self._sub_var(m.group(1), extra)), text)
        if key == "Fn::If":
            cond, yes, no = arg
            return self.resolve(yes if self.condition(cond) else no)
        if key == "Fn::Equals":
            left, right = self.resolve(arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.resolve(arg[0])
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::Join":
            sep, items = arg
            return sep.join(str(i) for i in self.resolve(items))
        if key == "Fn::Select":
            index, items = self.resolve(arg)
            return items[int(index)]
        return {key: self.resolve(arg)}

    def _sub_var(self, name: str, extra: Mapping[str, Any]) -> Any:
        if name in extra:
            return extra[name]
        if "." in name:
            return self.attributes[name]
        return self.ref(name)


def resource(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    try:
        found: dict[str, Any] = template["Resources"][logical_id]
    except KeyError:
        raise KeyError(f"template.yaml has no resource {logical_id}") from None
    return found


def http_routes(template: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(METHOD, path) -> function logical id, from every function's HttpApi events."""
    routes: dict[tuple[str, str], str] = {}
    for logical_id, spec in template["Resources"].items():
        if spec.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (spec.get("Properties", {}).get("Events") or {}).values():
            if event.get("Type") == "HttpApi":
                props = event.get("Properties", {})
                routes[(str(props.get("Method", "ANY")).upper(), str(props["Path"]))] = logical_id
    return routes


def function_code(template: dict[str, Any], logical_id: str) -> tuple[Path, str]:
    """(code directory, handler) of a function, Globals applied."""
    props = resource(template, logical_id).get("Properties", {})
    handler = props.get("Handler") or template.get("Globals", {}).get("Function", {}).get("Handler")
    return ROOT / str(props["CodeUri"]), str(handler)


def function_environment(resolver: Resolver, logical_id: str) -> dict[str, str]:
    glob = (
        resolver.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    )
    own = resource(resolver.template, logical_id).get("Properties", {}).get("Environment", {})
    merged = {**glob, **(own.get("Variables") or {})}
    return {k: str(resolver.resolve(v)) for k, v in merged.items()}
