"""The import rules in pyproject.toml's [tool.importlinter], checked with `lint-imports`.

The rooms install as `opencite.<room>` through package-dir mappings, which import-linter cannot
walk (it reads the `opencite` folder on disk). So the check runs on a mirror laid out as the
installed package: `opencite/<room>/...`, each file a symlink to the real one. Run it alone with
`python tests/test_import_rules.py`."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def mirror(into: Path) -> Path:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, folder in config["package-dir"].items():
        source = ROOT / folder
        target = into.joinpath(*package.split("."))
        for path in source.rglob("*.py"):
            relative = path.relative_to(source)
            # opencite/ itself holds only its own modules and cli/; the rooms come from their folders.
            if package == "opencite" and relative.parts[0] != "cli" and len(relative.parts) > 1:
                continue
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            (target / relative).symlink_to(path)
    return into


def lint_imports(tmp: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(mirror(tmp)))
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(exe), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], env=env,
                          capture_output=True, text=True, cwd=tmp)


def test_the_rooms_keep_their_import_rules(tmp_path):
    result = lint_imports(tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_module_imports_itself_back(tmp_path, monkeypatch):
    # Layers stop cycles between rooms; this stops them inside a room too (lazy imports count).
    import grimp

    monkeypatch.syspath_prepend(str(mirror(tmp_path)))
    graph = grimp.build_graph("opencite", exclude_type_checking_imports=True)
    assert import_cycles(graph) == []


def import_cycles(graph) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan, iterative)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for start in sorted(graph.modules):
        if start in order:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        order[start] = low[start] = len(order)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in order:
                    order[child] = low[child] = len(order)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], order[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == order[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    cycles.append(sorted(group))
    return cycles


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result = lint_imports(Path(tmp))
    print(result.stdout, result.stderr)
    sys.exit(result.returncode)
