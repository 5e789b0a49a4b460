"""The Athena tables and named queries of template.yaml, run on DuckDB over local copies of the exports.

template.yaml is the one home of the SQL and of the table columns: Athena runs the `QueryString` of
each `AWS::Athena::NamedQuery` over the Glue tables, and this module runs the very same text on
DuckDB over JSON-lines files laid out like the bucket's keys, so `make report` and the tests get
their numbers from the queries people run in Athena.

Interface (used by local/report.py and the tests):

- `named_queries(template_path=TEMPLATE) -> dict[str, str]`: NamedQuery `Name` -> SQL, in
  template order.
- `parameters(sql) -> list[str]`: the names of a query's `?` placeholders, in order. Athena's
  execution parameters are positional; each `?` in our SQL follows `<column> = `, and that column
  names the parameter (every query takes `user_id`: Athena needs it to find the account's
  partitions, see the template).
- `tables(template_path=TEMPLATE) -> dict[str, GlueTable]`: the Glue tables (columns as parsed
  Hive types, partition keys, the dataset folder under the export prefix); `parse_type` and
  `duckdb_type` read and translate one Glue type.
- `database_name()`, `export_prefix()`: the Glue database's name and the `ExportPrefix` default.
- `connect(export_root, *, prefix=None, template_path=TEMPLATE) -> duckdb.DuckDBPyConnection`: an
  in-memory DuckDB with one view per Glue table over
  `<export_root>/<prefix>/<table>/dt=YYYY-MM-DD/user_id=<id>/*.jsonl` (`prefix` defaults to the
  template's `ExportPrefix` default, `x-metrics`). The views carry exactly the Glue columns (same
  names, same nested types) plus the partition columns `dt` and `user_id` as strings, live in a
  schema named like the Glue database (so `x_metrics.tweets` resolves) that is also on the search
  path (so `tweets` does). A dataset without files yet is an empty view of the same columns. The
  file list is read when `connect` runs: connect again after new exports land. The session's time
  zone is UTC, as Athena's, so `current_date` is the UTC day the export's `dt` uses.
- `run(con, name, **params) -> list[dict[str, Any]]`: runs the named query `name` of the
  repository's template.yaml with its parameters by name, `run(con, "daily_impressions",
  user_id="1700…")` (a missing or unknown one is a TypeError); one dict per row, column name ->
  value (DuckDB's Python values: int, float, str, None, dict, list).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb

from local.template import TEMPLATE, Resolver, load

# The partition columns every export table has, in key order (dt=…/user_id=…/).
PARTITION_KEYS = ("dt", "user_id")
_PARAMETER = re.compile(r"(\w+)\s*=\s*\?")


# --- Hive types, as Glue stores them ---------------------------------------------------------------


@dataclass(frozen=True)
class Primitive:
    name: str  # string, bigint, int, double, boolean


@dataclass(frozen=True)
class Array:
    element: HiveType


@dataclass(frozen=True)
class Struct:
    fields: tuple[tuple[str, HiveType], ...]


HiveType = Primitive | Array | Struct
_PRIMITIVES = {
    "string": "VARCHAR",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
}


def parse_type(text: str) -> HiveType:
    """A Glue column type (`array<struct<type:string,id:string>>`) as a tree."""
    parsed, rest = _parse(text.replace(" ", ""))
    if rest:
        raise ValueError(f"unexpected {rest!r} after the type in {text!r}")
    return parsed


def _parse(text: str) -> tuple[HiveType, str]:
    if text.startswith("array<"):
        element, rest = _parse(text[len("array<") :])
        return Array(element), _expect(rest, ">", text)
    if text.startswith("struct<"):
        fields: list[tuple[str, HiveType]] = []
        rest = text[len("struct<") :]
        while True:
            name, colon, rest = rest.partition(":")
            if not colon or not re.fullmatch(r"\w+", name):
                raise ValueError(f"a struct field needs name:type in {text!r}")
            field_type, rest = _parse(rest)
            fields.append((name, field_type))
            if rest.startswith(","):
                rest = rest[1:]
                continue
            return Struct(tuple(fields)), _expect(rest, ">", text)
    match = re.match(r"[a-z]+", text)
    if not match or match.group() not in _PRIMITIVES:
        raise ValueError(f"unknown type at {text!r}")
    return Primitive(match.group()), text[match.end() :]


def _expect(rest: str, token: str, text: str) -> str:
    if not rest.startswith(token):
        raise ValueError(f"expected {token!r} at {rest!r} in {text!r}")
    return rest[len(token) :]


def duckdb_type(hive: HiveType) -> str:
    if isinstance(hive, Primitive):
        return _PRIMITIVES[hive.name]
    if isinstance(hive, Array):
        return f"{duckdb_type(hive.element)}[]"
    inner = ", ".join(f'"{name}" {duckdb_type(t)}' for name, t in hive.fields)
    return f"STRUCT({inner})"


# --- what template.yaml declares -------------------------------------------------------------------


@dataclass(frozen=True)
class GlueTable:
    name: str
    columns: tuple[tuple[str, HiveType], ...]  # data columns, in declared order
    partition_keys: tuple[str, ...]
    dataset: str  # the folder under the export prefix: tweets, accounts, runs


def _resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [spec for spec in template["Resources"].values() if spec.get("Type") == kind]


def database_name(template_path: Path = TEMPLATE) -> str:
    template = load(template_path)
    (database,) = _resources(template, "AWS::Glue::Database")
    return str(Resolver(template).resolve(database["Properties"]["DatabaseInput"]["Name"]))


def export_prefix(template_path: Path = TEMPLATE) -> str:
    return str(Resolver(load(template_path)).ref("ExportPrefix"))


def tables(template_path: Path = TEMPLATE) -> dict[str, GlueTable]:
    found: dict[str, GlueTable] = {}
    for spec in _resources(load(template_path), "AWS::Glue::Table"):
        table_input = spec["Properties"]["TableInput"]
        storage = table_input["StorageDescriptor"]
        columns = tuple((c["Name"], parse_type(c["Type"])) for c in storage["Columns"])
        keys = tuple(k["Name"] for k in table_input.get("PartitionKeys", ()))
        name = str(table_input["Name"])
        found[name] = GlueTable(name, columns, keys, _dataset(storage["Location"]))
    return found


def _dataset(location: Any) -> str:
    """The dataset folder from a Location like !Sub s3://${ExportBucket}/${ExportPrefix}/tweets/."""
    text = location.get("Fn::Sub") if isinstance(location, dict) else location
    if not isinstance(text, str):
        raise ValueError(f"a Glue table's Location is a !Sub string: {location!r}")
    return text.rstrip("/").rsplit("/", 1)[-1]


def named_queries(template_path: Path = TEMPLATE) -> dict[str, str]:
    return {
        str(spec["Properties"]["Name"]): str(spec["Properties"]["QueryString"])
        for spec in _resources(load(template_path), "AWS::Athena::NamedQuery")
    }


def parameters(sql: str) -> list[str]:
    names = _PARAMETER.findall(sql)
    if len(names) != sql.count("?"):
        raise ValueError("every ? of a named query follows `<column> =`, which names it")
    return names


# --- DuckDB over local exports ---------------------------------------------------------------------


def connect(
    export_root: Path, *, prefix: str | None = None, template_path: Path = TEMPLATE
) -> duckdb.DuckDBPyConnection:
    root = Path(export_root) / (prefix if prefix is not None else export_prefix(template_path))
    schema = database_name(template_path)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f'CREATE SCHEMA "{schema}"')
    for table in tables(template_path).values():
        con.execute(f'CREATE VIEW "{schema}"."{table.name}" AS {_view(root / table.dataset, table)}')
    con.execute(f"SET search_path = '{schema},main'")
    return con


def _view(folder: Path, table: GlueTable) -> str:
    columns = {name: duckdb_type(t) for name, t in table.columns}
    depth = "/".join(f"{key}=*" for key in table.partition_keys)
    pattern = f"{folder}/{depth}/*.jsonl"
    if not any(folder.glob(f"{depth}/*.jsonl")):
        typed = [f'CAST(NULL AS {t}) AS "{n}"' for n, t in columns.items()]
        typed += [f'CAST(NULL AS VARCHAR) AS "{key}"' for key in table.partition_keys]
        return f"SELECT {', '.join(typed)} WHERE false"
    spec = ", ".join(f"'{name}': '{t}'" for name, t in columns.items())
    hive = ", ".join(f"'{key}': 'VARCHAR'" for key in table.partition_keys)
    # Partition values stay strings, as in Glue: DuckDB would otherwise read user_id as a number.
    return (
        f"SELECT * FROM read_json('{_quoted(pattern)}', format = 'newline_delimited', "
        f"columns = {{{spec}}}, hive_partitioning = true, hive_types = {{{hive}}})"
    )


def _quoted(text: str) -> str:
    return text.replace("'", "''")


@lru_cache(maxsize=1)
def _queries() -> dict[str, str]:
    return named_queries(TEMPLATE)


def run(con: duckdb.DuckDBPyConnection, name: str, /, **params: Any) -> list[dict[str, Any]]:
    sql = _queries()[name]
    wanted = parameters(sql)
    missing, extra = set(wanted) - set(params), set(params) - set(wanted)
    if missing or extra:
        raise TypeError(f"{name} takes {sorted(wanted)}: missing {sorted(missing)}, unknown {sorted(extra)}")
    cursor = con.execute(sql, [params[p] for p in wanted])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
