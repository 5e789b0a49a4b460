"""An export line checked against the Glue table template.yaml declares for it.

Athena's JSON SerDe reads a field the table does not declare as nothing and a value of the wrong
type as an error or NULL, silently in both cases for whoever queries. So the writer and the table
must agree exactly: every field of a line is declared (nested struct fields too), and every value
fits its declared type (ids are strings, counts are bigint, structs and arrays recursively). JSON
null fits every type: Athena reads it as NULL.
"""

from __future__ import annotations

from typing import Any

from local.queries import Array, GlueTable, HiveType, Primitive, Struct

_RANGES = {"int": 2**31, "bigint": 2**63}


def problems(line: dict[str, Any], table: GlueTable) -> list[str]:
    """What in `line` the table cannot read as written: one message per field, with its path."""
    declared: dict[str, HiveType] = dict(table.columns)
    # A partition key may also be in the line (user_id is): Athena takes it from the key's path.
    declared.update({key: Primitive("string") for key in table.partition_keys})
    return _struct_problems(line, declared, table.name)


def _struct_problems(value: dict[str, Any], fields: dict[str, HiveType], path: str) -> list[str]:
    found = [f"{path}.{key}: not declared" for key in value if key not in fields]
    for key, item in value.items():
        if key in fields:
            found += _problems(item, fields[key], f"{path}.{key}")
    return found


def _problems(value: Any, hive: HiveType, path: str) -> list[str]:
    if value is None:
        return []
    if isinstance(hive, Struct):
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__} where a struct is declared"]
        return _struct_problems(value, dict(hive.fields), path)
    if isinstance(hive, Array):
        if not isinstance(value, list):
            return [f"{path}: {type(value).__name__} where an array is declared"]
        return [p for i, item in enumerate(value) for p in _problems(item, hive.element, f"{path}[{i}]")]
    return [] if _fits(value, hive.name) else [f"{path}: {value!r} does not fit {hive.name}"]


def _fits(value: Any, name: str) -> bool:
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):  # a bool is an int to Python, never to the SerDe
        return False
    if name == "double":
        return isinstance(value, int | float)
    limit = _RANGES[name]
    return isinstance(value, int) and -limit <= value < limit
