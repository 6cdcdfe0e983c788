"""Imports sit at module level unless a function-level import has a reason: it would add a heavy
library to what importing its module costs (torch, transformers, mteb, ...: `harness --help`,
`harness methods`, a refused option and every listing stay fast), it is an optional extra, it is
guarded (inside ``try``), or its name means something else in the module. Checked statically from
each module's top-level imports, followed through the project's own modules."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "methods", "leaderboard")
HEAVY = {"torch", "transformers", "peft", "accelerate", "mteb", "sentence_transformers", "datasets", "scipy", "gguf"}
OPTIONAL = {"deepspeed", "matplotlib", "datasette", "uvicorn", "mlflow", "wandb", "tensorboard", "faiss", "psycopg"}


def _path(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.exists():
            return candidate
    return None


def _targets(node: ast.AST) -> list[str]:
    """The modules an import statement imports (``from a import b`` also ``a.b`` where b is one)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return [node.module] + [f"{node.module}.{a.name}" for a in node.names if _path(f"{node.module}.{a.name}")]
    return []


def _top_level(tree: ast.Module) -> list[str]:
    found = []
    for node in tree.body:
        found += _targets(node)
        if isinstance(node, ast.If) and not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
            for inner in node.body + node.orelse:
                found += _targets(inner)
    return found


_HEAVY_OF: dict[str, frozenset[str]] = {}


def heavy_of(module: str, seen: frozenset[str] = frozenset()) -> frozenset[str]:
    """The heavy libraries importing ``module`` loads (its parent packages included)."""
    top = module.split(".")[0]
    if top not in PACKAGES:  # a part names the library it loads (safetensors.torch: torch)
        return frozenset(set(module.split(".")) & HEAVY)
    if module in _HEAVY_OF:
        return _HEAVY_OF[module]
    if module in seen:
        return frozenset()
    parts, found = module.split("."), set()
    for cut in range(1, len(parts)):
        found |= heavy_of(".".join(parts[:cut]), seen | {module})
    path = _path(module)
    if path is not None:
        for target in _top_level(ast.parse(path.read_text())):
            found |= heavy_of(target, seen | {module})
    _HEAVY_OF[module] = frozenset(found)
    return _HEAVY_OF[module]


def _bound(node: ast.Import | ast.ImportFrom) -> list[str]:
    return [alias.asname or alias.name.split(".")[0] for alias in node.names]


def movable_imports(path: Path, module: str | None = None) -> list[str]:
    """Function-level imports of ``path`` (the module ``module``, by default named by its place)
    that could be at module level at no cost."""
    tree = ast.parse(path.read_text())
    module = module or ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    own = heavy_of(module)
    stored = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    stored |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    stored |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    found = []

    def visit(node: ast.AST, in_function: bool, guarded: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)) and in_function and not guarded:
                targets = _targets(child)
                cost = frozenset().union(*(heavy_of(t) for t in targets)) - own
                reasons = (
                    cost
                    or {t.split(".")[0] for t in targets} & OPTIONAL
                    or set(_bound(child)) & stored
                    or (isinstance(child, ast.ImportFrom) and child.level)
                )
                if not reasons:
                    found.append(f"{path}:{child.lineno}: {ast.unparse(child)}")
            visit(
                child,
                in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)),
                guarded or isinstance(child, ast.Try),
            )

    visit(tree, False, False)
    return found


def _modules() -> list[Path]:
    help_path = {"__init__", "__main__", "config", "errors", "options", "paths"}  # what `harness --help` imports
    return [
        path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "schema_versions" not in path.parts
        and path.parent.name != "cli"
        and not (path.parent == ROOT / "harness" and path.stem in help_path)
    ]


def test_function_level_imports_each_have_a_reason():
    movable = [line for path in _modules() for line in movable_imports(path)]
    assert movable == [], "\n".join(movable)


def test_the_check_finds_a_light_import_left_in_a_function(tmp_path):
    module = tmp_path / "probe.py"
    module.write_text("def f():\n    import json\n    from harness.errors import HarnessError\n    import torch\n")
    found = movable_imports(module, "harness.probe")
    assert [line.split(": ", 1)[1] for line in found] == ["import json", "from harness.errors import HarnessError"]
