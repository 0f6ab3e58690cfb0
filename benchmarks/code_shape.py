"""The shape of the code, as a maintainer meets it: largest modules, longest functions, recipe lengths, the
size of the public API, the depth of the internal import graph and its cycles, and the README's size.

    python -m benchmarks.code_shape                 # this checkout; figures printed and written to JSON
    python -m benchmarks.code_shape --root /tmp/old # another checkout (e.g. a git worktree of an older commit)
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from pathlib import Path

from benchmarks._common import RESULTS_DIR, ROOT


def _modules(root: Path) -> dict[str, Path]:
    out = {}
    for path in sorted((root / "toolkit").rglob("*.py")):
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The toolkit modules ``name`` imports (relative imports, at any depth of the file)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            found |= {t for t in [target, *(f"{target}.{a.name}" for a in node.names)] if t in modules}
    return found - {name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _longest_chain(graph: dict[str, set[str]]) -> list[str]:
    best: dict[str, list[str]] = {}

    def chain(v: str, seen: frozenset) -> list[str]:
        if v in best and not (seen & set(best[v])):
            return best[v]
        longest = [v]
        for w in graph[v]:
            if w not in seen:
                c = [v, *chain(w, seen | {v})]
                longest = max(longest, c, key=len)
        best[v] = longest
        return longest

    return max((chain(v, frozenset()) for v in graph), key=len)


def code_shape(root: Path) -> dict:
    modules = _modules(root)
    lines = {n: len(p.read_text(encoding="utf-8").splitlines()) for n, p in modules.items()}
    functions = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append((node.end_lineno - node.lineno + 1, f"{name}.{node.name}"))
    graph = {n: _imports(n, p, modules) - {"toolkit"} for n, p in modules.items() if n != "toolkit"}
    chain = _longest_chain(graph)
    api = subprocess.run(
        [sys.executable, "-c", "import toolkit; print(len(toolkit.__all__))"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    return {
        "largest_modules": sorted(((v, k) for k, v in lines.items()), reverse=True)[:5],
        "longest_functions": sorted(functions, reverse=True)[:5],
        "recipe_lines": {
            p.name: len(p.read_text().splitlines()) for p in sorted((root / "recipes").glob("*.py"))
        },
        "public_api_names": int(api.stdout.strip()) if api.returncode == 0 else None,
        "import_chain": chain,
        "import_depth": len(chain),
        "import_cycles": _cycles(graph),
        "readme_bytes": (root / "README.md").stat().st_size,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "code_shape.json")
    args = parser.parse_args(argv)
    shape = code_shape(args.root.resolve())
    text = json.dumps(shape, indent=1, ensure_ascii=False)
    print(text)
    args.output.write_text(text + "\n", encoding="utf-8")
    return shape


if __name__ == "__main__":
    main()
