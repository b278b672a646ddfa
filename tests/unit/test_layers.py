"""The code's shape: imports point down the layers, no import cycles, and no task-name
switches outside the task table (``deployments/protocol.py``)."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

from deployments.protocol import TASKS

PACKAGE = Path(__file__).resolve().parents[2] / "deployments"

# Lower numbers are lower layers; a module may import its own layer or those below it.
LAYERS = {
    "errors": 0,
    "protocol": 1,
    "audio": 2,
    "audio_stream": 2,
    "models": 2,
    "tasks": 3,
    # Store builders may drive engines (the keyword spotter's training speech comes from
    # the Piper engine); no engine imports a builder, and the store loads them by name.
    "models.builders": 4,
    "graph": 3,
    "serving": 4,
    "config": 4,
    "router": 5,
    "app": 6,
    "launch": 6,
    "drain": 6,
    "k8s": 7,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Every module's imports of other deployments modules (lazy ones included)."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            found[module_name(path)] |= {n for n in names if n.startswith("deployments.")}
    return found


def layer(module: str) -> int:
    """The layer of a module: its most specific entry in LAYERS."""
    parts = module.split(".")[1:]
    for depth in range(len(parts), 0, -1):
        if ".".join(parts[:depth]) in LAYERS:
            return LAYERS[".".join(parts[:depth])]
    raise KeyError(module)


def test_every_top_level_part_has_a_layer():
    parts = {module_name(p).split(".")[1] for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE
             or p.stem != "__init__"}  # fmt: skip
    assert parts <= set(LAYERS), sorted(parts - set(LAYERS))


def test_imports_point_down_the_layers():
    upward = [
        f"{src} -> {dst}"
        for src, targets in imports().items()
        if src != "deployments"
        for dst in targets
        if layer(dst) > layer(src)
    ]
    assert upward == []


def test_there_is_no_import_cycle():
    graph = imports()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path[path.index(nxt) :], nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for module in list(graph):
        if module not in state:
            visit(module)


SWITCH = re.compile(
    r"""\btask\w*\s*(==|!=)\s*["'](?P<a>\w+)["']"""
    r"""|\btask\w*\s+(not\s+)?in\s+[(\[{][^)\]}]*["'](?P<b>\w+)["']"""
)


def test_no_task_name_switch_outside_the_task_table():
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "protocol.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = SWITCH.search(line)
            if match and (match["a"] or match["b"]) in TASKS:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert found == []


def test_the_switch_check_would_see_one():
    assert SWITCH.search('if task == "tts":')
    assert SWITCH.search('elif task in ("seq2seq", "ctc"):')
