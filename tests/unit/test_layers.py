"""Imports run one way (issue 12, point 0): each part of the package imports only the parts in the layers
below its own, so that the code reads bottom up and a change below never needs a look above. Imports inside
functions count too: they are deferred, not exempt."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import daemon

PACKAGE = Path(daemon.__file__).parent

LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(layer.split())
    for layer in (
        "text domain addresses logs",
        "campaign tables",
        "intake config storage",  # pure intake logic; settings; the database's tables and files
        "explain pipeline mail migrations",
        "render",
        "service",  # recording, replies, the outbox, the watcher
        "app",  # the application layer every face renders
        "staff",  # the workbook, digest, reminders and export, built on the application layer
        "runner",  # `shenbao run`: the watcher, the outbox and the timed staff jobs together
        "web demo",
        "commands",
        "cli",
        "__main__",
    )
)


def part_of(module: str) -> str:
    """daemon.service.recorder -> service; daemon.config -> config."""
    return module.split(".")[1]


def imports(path: Path) -> Iterator[str]:
    """The daemon modules a file imports, anywhere in it, as absolute names."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target
            if node.module is None:  # from . import digest: the names are modules
                yield from (f"{target}.{alias.name}" for alias in node.names)


def layer_of(part: str) -> int:
    return next(index for index, layer in enumerate(LAYERS) if part in layer)


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {part_of(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)) for p in PACKAGE.rglob("*.py")}
    parts.discard("__init__")

    assert parts - set().union(*LAYERS) == set()


def test_each_part_imports_only_the_layers_below_its_own() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        if relative.parts[1:] == ("__init__",):
            continue
        part = part_of(".".join(relative.parts))
        for target in imports(path):
            if target.split(".")[0] != "daemon" or target == "daemon":
                continue
            used = part_of(target)
            if used != part and layer_of(used) >= layer_of(part):
                wrong.append(f"{relative.as_posix()}.py imports {target}")

    assert wrong == []
