"""The layer ships what the app imports: every third-party module the shared package loads at run
time comes from a distribution pinned in layers/common/requirements.txt, or from the Lambda runtime
(boto3 and botocore). Tests run in a venv that has everything, so only this check catches a module
the deployed layer would lack."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "common"
PACKAGE = LAYER / "xmetrics"
FUNCTIONS = ROOT / "functions"
RUNTIME_PROVIDED = {"boto3", "botocore"}


def _run_time_imports(path: Path) -> set[str]:
    """Top-level module names imported by a file, leaving out `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body
        for node in ast.walk(stmt)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _pinned_distributions() -> set[str]:
    lines = (LAYER / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return {_normal(re.split(r"[=<>~!\[; ]", line.strip(), maxsplit=1)[0]) for line in lines if line.strip()}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_third_party_import_is_pinned_in_the_layer() -> None:
    sources = [*PACKAGE.rglob("*.py"), *FUNCTIONS.glob("*/app.py")]
    imported = set().union(*(_run_time_imports(path) for path in sources))
    third_party = imported - set(sys.stdlib_module_names) - {"__future__", "xmetrics"} - RUNTIME_PROVIDED
    distributions = packages_distributions()
    pinned = _pinned_distributions()
    missing = {
        module: distributions.get(module, ["?"])
        for module in sorted(third_party)
        if not pinned & {_normal(d) for d in distributions.get(module, [])}
    }
    assert not missing, f"imported by the app but not pinned in layers/common/requirements.txt: {missing}"
    # and the check sees the imports it is meant to guard
    assert {"urllib3", "cryptography", "orjson", "aws_lambda_powertools"} <= third_party
