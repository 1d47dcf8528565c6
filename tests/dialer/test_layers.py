"""Dependencies point one way: campaigns uses compliance and telephony, never the reverse.

compliance/ never imports campaigns/; telephony/ imports neither campaigns/ nor compliance/. Every
import counts, including one inside a function and importlib.import_module("...") with a literal.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "compliance": ("campaigns",),
    "telephony": ("campaigns", "compliance"),
}


def _sources(package: str) -> Iterator[Path]:
    for path in sorted((REPO / package).rglob("*.py")):
        if "migrations" not in path.relative_to(REPO).parts:
            yield path


def _module_of(path: Path) -> list[str]:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(source: str, *, path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted module) for every import in the source of the file at path, anywhere in it."""
    package = _module_of(path)
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the file's own package
                base = package[: len(package) - (node.level - 1)]
                yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])
            else:
                yield node.lineno, node.module or ""
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def _violations(package: str) -> list[str]:
    found = []
    for path in _sources(package):
        for line, module in _imports(path.read_text(), path=path):
            top = module.split(".", 1)[0]
            if top in FORBIDDEN[package]:
                found.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_the_layers_above(package: str) -> None:
    assert _violations(package) == []


def test_the_walk_sees_every_kind_of_import() -> None:
    source = (
        "import importlib\n"
        "def late():\n"
        "    from campaigns.models import Campaign\n"
        "from .. import x\n"
        "from ..bridge.runner import BridgeRunner\n"
        "importlib.import_module('compliance.services')\n"
    )
    found = sorted(_imports(source, path=REPO / "telephony" / "engine" / "core.py"))
    assert found == [
        (1, "importlib"),
        (3, "campaigns.models"),
        (4, "telephony"),
        (5, "telephony.bridge.runner"),
        (6, "compliance.services"),
    ]
