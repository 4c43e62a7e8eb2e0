"""The shape of the code: no two modules of pipeline/ import each other, even indirectly (docs/design.md: each
stage is one module; the runner orders, the stages do the work)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every pipeline module ``path`` imports, wherever the import stands (also inside functions and
    ``if TYPE_CHECKING``): a cycle is a cycle even when Python happens to survive it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from pipeline.stages import clip" imports the module clip; "from pipeline.engines import
            # load_engine" imports something defined in the package pipeline.engines itself.
            names = [
                f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != "pipeline":
                found.add(name)
    found.discard(module_name(path))
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def package_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): imports_of(f, modules) for f in files}


def test_the_finder_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_is_read_from_the_package() -> None:
    graph = package_graph()
    assert "pipeline.stages.clip" in graph["pipeline.runner"]
    assert "pipeline.media" in graph["pipeline.stages.render"]
    assert "pipeline.media.process" in graph["pipeline.media.tools"]


def test_no_two_modules_of_the_package_import_each_other() -> None:
    assert cycles(package_graph()) == []


# The calls that start a program: every way subprocess has, and os's own forks, execs and spawns.
STARTERS = {
    "subprocess": {"Popen", "run", "call", "check_call", "check_output", "getoutput", "getstatusoutput"},
    "os": {"system", "popen", "fork", "forkpty", "posix_spawn", "posix_spawnp"}
    | {f"exec{tail}" for tail in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe")}
    | {f"spawn{tail}" for tail in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe")},
}


def starts_programs(source: str) -> bool:
    """Whether ``source`` calls or imports one of the STARTERS (``subprocess.run``, ``from os import
    fork``)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            names = [(node.value.id, node.attr)]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [(node.module, alias.name) for alias in node.names]
        else:
            continue
        if any(name in STARTERS.get(module, ()) for module, name in names):
            return True
    return False


def test_the_finder_sees_a_program_started() -> None:
    assert starts_programs("import subprocess\nsubprocess.run(['ls'])")
    assert starts_programs("from os import execvp")
    assert starts_programs("import os\nos.posix_spawn('ls', ['ls'], {})")
    assert not starts_programs("import os\nos.getpid()\nsubprocess = None")


def test_one_module_starts_programs() -> None:
    """ffmpeg and the watchdog are started in ``pipeline.media.process`` and nowhere else, so every
    program the pipeline starts is logged, watched and ends with it (docs/design.md)."""
    found = [
        module_name(path)
        for path in sorted(PACKAGE.rglob("*.py"))
        if starts_programs(path.read_text(encoding="utf-8"))
    ]
    assert found == ["pipeline.media.process"]


def test_nothing_refers_to_a_document_or_folder_outside_the_repository() -> None:
    """The standards and the design are docs/standards.md and docs/design.md; the recordings tests/media."""
    import re

    # The forbidden names are put together here so that this test is not itself a reference to them.
    shared = "sha" + "red"
    outside = re.compile(rf"\.\./{shared}|{shared}/media|(?<![/\w])(?:STANDARDS|DESIGN)\.md")
    root = PACKAGE.parent
    found = []
    for folder in ("pipeline", "tests", "bench", "samples", "configs"):
        for path in sorted((root / folder).rglob("*")):
            if (
                path.suffix not in (".py", ".yaml", ".md", ".js", ".html", ".css", ".txt")
                or "results" in path.parts
            ):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if outside.search(line):
                    found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert found == []
    assert (root / "docs" / "standards.md").is_file() and (root / "docs" / "design.md").is_file()
