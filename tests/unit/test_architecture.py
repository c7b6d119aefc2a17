"""The import order of ARCHITECTURE.rst, checked: imports go down the layers, never up, never
in a circle, and only at the top of a module (a function-level import hides a dependency)."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bandersnatch

PACKAGE = Path(bandersnatch.__file__).parent
ROOT = "bandersnatch"

# Bottom to top; a module may import its own layer and the layers below.  A name is a package or
# a module; the longest name that contains a module decides its layer.  Keep ARCHITECTURE.rst alike.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("bandersnatch", "bandersnatch.errors", "bandersnatch.names", "bandersnatch.progress"),
    ("bandersnatch.formats",),
    ("bandersnatch.store",),
    ("bandersnatch.config",),
    ("bandersnatch.ledger",),
    ("bandersnatch.publish",),
    ("bandersnatch.selection",),
    ("bandersnatch.upstream",),
    ("bandersnatch.sync",),
    # The composition root builds sync's parts (one project's sync, the root index) and hands
    # them to the run, which therefore sits above it.
    ("bandersnatch.runtime",),
    ("bandersnatch.sync.mirror",),
    ("bandersnatch.verify", "bandersnatch.stats"),
    ("bandersnatch.cli", "bandersnatch.__main__"),
)

# Function-level imports that are honest: (importing module, imported module) -> why.
LAZY: dict[tuple[str, str], str] = {
    ("bandersnatch.store.recorded", "bandersnatch.store.s3"):
        "boto3 is the optional extra [s3]: only an S3 mirror imports it",
    **{("bandersnatch.cli", command): "a command loads only its own modules, so `bandersnatch status` "
       "and `--help` start without the mirror's (requests, lxml: about 0.5 s instead of 1.8 s)"
       for command in ("bandersnatch.sync.mirror", "bandersnatch.stats.command", "bandersnatch.stats.errors",
                       "bandersnatch.runtime", "bandersnatch.sync.dryplan", "bandersnatch.upstream.feeds",
                       "bandersnatch.verify.status", "bandersnatch.verify.verifier",
                       "bandersnatch.verify.audit")},
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (for ``from X import name``: X)
    line: int
    nested: bool  # inside a function


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[Import]:
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    yield from _walk(tree, module, package, nested=False)


def _walk(node: ast.AST, module: str, package: str, nested: bool) -> Iterator[Import]:
    for child in ast.iter_child_nodes(node):
        inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        if isinstance(child, ast.Import):
            yield from (Import(module, alias.name, child.lineno, inner) for alias in child.names)
        elif isinstance(child, ast.ImportFrom):
            yield from (Import(module, target, child.lineno, inner) for target in _targets(child, package))
        yield from _walk(child, module, package, inner)


def _targets(node: ast.ImportFrom, package: str) -> list[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        parts = package.split(".")
        base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
    # ``from . import regexbound`` names a module; ``from .x import name`` names x.
    submodules = [f"{base}.{alias.name}" for alias in node.names if _is_module(f"{base}.{alias.name}")]
    return submodules or [base]


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


@functools.cache
def all_imports() -> tuple[Import, ...]:
    return tuple(i for path in sorted(PACKAGE.rglob("*.py")) for i in imports(path))


def layer(module: str) -> int:
    best, rank = "", -1
    for index, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > len(best):
                best, rank = name, index
    assert rank >= 0, f"{module} is in no layer of LAYERS: add it (and to ARCHITECTURE.rst)"
    return rank


def ours(target: str) -> bool:
    return target == ROOT or target.startswith(ROOT + ".")


def test_every_import_goes_down_the_layers() -> None:
    upward = [f"{i.module} (line {i.line}) imports {i.target}" for i in all_imports()
              if ours(i.target) and layer(i.target) > layer(i.module)]
    assert not upward, "imports against the order of ARCHITECTURE.rst:\n" + "\n".join(upward)


def test_no_function_level_import_but_the_listed_ones() -> None:
    nested = [f"{i.module} (line {i.line}) imports {i.target} inside a function" for i in all_imports()
              if i.nested and (i.module, i.target) not in LAZY]
    assert not nested, "function-level imports (move them to the top, or list them in LAZY with why):\n" + \
        "\n".join(nested)


def test_the_listed_lazy_imports_still_exist() -> None:
    found = {(i.module, i.target) for i in all_imports() if i.nested}
    assert not set(LAZY) - found, f"LAZY lists imports that are gone: {sorted(set(LAZY) - found)}"


def test_no_import_circle_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    for i in all_imports():
        if ours(i.target) and i.target != i.module:
            graph.setdefault(i.module, set()).add(i.target)
    circle = _find_circle(graph)
    assert circle is None, "import circle: " + " -> ".join(circle or [])


def _find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()
    for start in sorted(graph):
        path: list[str] = []
        found = _visit(start, graph, path, set(), done)
        if found:
            return found
    return None


def _visit(node: str, graph: dict[str, set[str]], path: list[str], on_path: set[str],
           done: set[str]) -> list[str] | None:
    if node in on_path:
        return path[path.index(node):] + [node]
    if node in done:
        return None
    path.append(node)
    on_path.add(node)
    for target in sorted(graph.get(node, ())):
        found = _visit(target, graph, path, on_path, done)
        if found:
            return found
    path.pop()
    on_path.discard(node)
    done.add(node)
    return None


def test_the_checker_sees_relative_absolute_and_nested_imports(tmp_path: Path) -> None:
    source = "from ..sync import mirror\nimport bandersnatch.cli\ndef f() -> None:\n    from .x import y\n"
    tree = ast.parse(source)
    found = list(_walk(tree, "bandersnatch.formats.simple", "bandersnatch.formats", nested=False))
    assert [(i.target, i.nested) for i in found] == [
        ("bandersnatch.sync.mirror", False), ("bandersnatch.cli", False), ("bandersnatch.formats.x", True)]
    assert layer("bandersnatch.sync.mirror") > layer("bandersnatch.formats.simple")
    assert _find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
