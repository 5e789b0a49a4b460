"""The code as `sam build` ships it: layer sources and unpacked wheels, no bytecode anywhere.

SAM's python_pip workflow unzips wheels and copies sources without compiling them, and /opt and
/var/task are read-only in Lambda, so every cold start compiles every module it imports from the
layer. Locally `__pycache__` hides that cost; this copy (with PYTHONDONTWRITEBYTECODE=1) shows it.
boto3 and botocore stay where they are, precompiled, as the Lambda runtime provides them.
"""

from __future__ import annotations

import compileall
import py_compile
import re
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from bench.fixture import ROOT
from local.template import function_code, load

_NO_BYTECODE = shutil.ignore_patterns("__pycache__", "*.pyc")


@dataclass(frozen=True)
class Shipped:
    layer: Path  # what Lambda mounts at /opt/python
    code: dict[str, Path]  # function logical id -> its CodeUri copy (/var/task)


def _requirement_names(lines: list[str]) -> list[str]:
    names = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-") and "extra ==" not in line:
            names.append(re.split(r"[\s;<>=!~\[(]", line, maxsplit=1)[0])
    return names


def _closure(names: list[str]) -> list[metadata.Distribution]:
    seen: dict[str, metadata.Distribution] = {}
    pending = list(names)
    while pending:
        name = pending.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        dist = metadata.distribution(name)
        seen[key] = dist
        pending += _requirement_names(dist.requires or [])
    return list(seen.values())


def build(dest: Path, logical_ids: tuple[str, ...], *, compiled: bool = False) -> Shipped:
    """`compiled`: the layer build's step (layers/common/Makefile), `python -m compileall
    --invalidation-mode unchecked-hash` over the artifact (hash-based .pyc: valid whatever mtimes
    the zip round trip leaves)."""
    shutil.rmtree(dest, ignore_errors=True)
    layer = dest / "python"
    requirements = (ROOT / "layers" / "common" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    for dist in _closure(_requirement_names(requirements)):
        for file in dist.files or ():
            if file.parts[0] == ".." or "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            target = layer / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(str(dist.locate_file(file))), target)
    shutil.copytree(ROOT / "layers" / "common" / "xmetrics", layer / "xmetrics", ignore=_NO_BYTECODE)
    template = load()
    code: dict[str, Path] = {}
    for logical_id in logical_ids:
        source, _ = function_code(template, logical_id)
        code[logical_id] = dest / "task" / logical_id
        shutil.copytree(source, code[logical_id], ignore=_NO_BYTECODE)
    if compiled:
        mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
        if not compileall.compile_dir(dest, quiet=1, invalidation_mode=mode):
            raise RuntimeError(f"compileall failed under {dest}")
    return Shipped(layer, code)


def handler_module(logical_id: str) -> str:
    """The module Lambda imports from the function's own directory (Handler app.lambda_handler)."""
    _, handler = function_code(load(), logical_id)
    return handler.rsplit(".", 1)[0]
