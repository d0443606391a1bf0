"""The shape the team keeps (issue #14, docs/style.md): no product module over 300 lines, no function over 60;
every doc reference resolves, and no package's children import each other in a cycle, lazy and
TYPE_CHECKING imports counted (issue #26)."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("dashboard", "factory_agent", "shared")
MAX_MODULE, MAX_FUNCTION = 300, 60


def modules() -> list[Path]:
    return sorted(p for package in PRODUCT for p in (ROOT / package).rglob("*.py")
                  if "migrations" not in p.parts)


def long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION]


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE, f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_MODULE})"
    assert not long_functions(path), long_functions(path)


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, root: Path = ROOT) -> set[str]:
    """Every module `path` imports, wherever the import statement is: at the top, inside a function (a lazy
    import) or under `if TYPE_CHECKING:`; `from a import b` counts both a and a.b (b may be a module)."""
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = (".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
                    if node.level else node.module)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """module -> the product modules it imports (a name resolved to its longest known module prefix)."""
    paths = {module_name(p, root): p for package in packages for p in (root / package).rglob("*.py")
             if "migrations" not in p.parts}
    graph = {}
    for name, path in paths.items():
        targets = set()
        for target in imported_names(path, root):
            while target and target not in paths:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def sibling_cycles(graph: dict[str, set[str]], ignored: frozenset = frozenset()) -> list[str]:
    """For every package, its children (modules and subpackages) as nodes, an edge where anything inside one
    imports anything inside another: each group of siblings that import each other in a cycle (a strongly
    connected component, found by reachability), as "package: a, b, c"."""
    packages = {name.rpartition(".")[0] for name in graph} - {""}
    found = []
    for package in sorted(packages):
        def child(module: str) -> str | None:
            rest = module[len(package) + 1:] if module.startswith(package + ".") else None
            return f"{package}.{rest.split('.')[0]}" if rest else None

        edges: dict[str, set[str]] = {}
        for source, targets in graph.items():
            for target in targets:
                a, b = child(source), child(target)
                if a and b and a != b and (source, target) not in ignored:
                    edges.setdefault(a, set()).add(b)
        reach = {node: _reachable(edges, node) for node in edges}
        seen: set[str] = set()
        for node in sorted(edges):
            group = sorted(other for other in reach[node] if node in reach.get(other, ()))
            if group and node not in seen:
                seen.update(group)
                found.append(f"{package}: {', '.join(group)}")
    return found


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_package_imports_a_sibling_in_a_cycle():
    assert sibling_cycles(import_graph(ROOT, PRODUCT)) == []


def test_a_cycle_hidden_in_a_lazy_or_type_checking_import_is_found(tmp_path):
    files = {"pkg/__init__.py": "", "pkg/a.py": "from pkg.b import thing\n",
             "pkg/b.py": "def later():\n    from pkg import c\n",
             "pkg/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import X\n",
             "pkg/d.py": "import pkg.a\n", "pkg/sub/__init__.py": "", "pkg/sub/e.py": "from ..d import y\n"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path, ("pkg",))
    assert sibling_cycles(graph) == ["pkg: pkg.a, pkg.b, pkg.c"]
    (tmp_path / "pkg/d.py").write_text("from pkg.sub import e\n")
    assert sibling_cycles(import_graph(tmp_path, ("pkg",))) == ["pkg: pkg.a, pkg.b, pkg.c", "pkg: pkg.d, pkg.sub"]


# --- doc references (issue #26): "DESIGN §N" is docs/architecture.md section N, "STYLE N" docs/style.md habit N ----
ARCHITECTURE, STYLE_DOC = ROOT / "docs" / "architecture.md", ROOT / "docs" / "style.md"
REFERENCING = (".py", ".html", ".js", ".md")
NOT_OURS = {".venv", "node_modules", ".git", "__pycache__", ".pytest_cache", "instance", "state", "logs",
            "artifacts", "vendor", "results"}
SECTION = r"§\s*(\d+(?:\.\d+)?)"
DESIGN_REF = re.compile(rf"DESIGN\s*{SECTION}((?:\s*(?:,|and|–|—|-)\s*{SECTION})*)")
BARE_REF = re.compile(SECTION)  # inside docs/architecture.md, "§N" is its own section N
STYLE_REF = re.compile(r"STYLE\s+(?:habit\s+)?(\d+)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def referencing_files(root: Path = ROOT) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in NOT_OURS and not d.startswith(".")]
        found += [Path(folder) / f for f in files if f.endswith(REFERENCING)]
    return sorted(found)


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """A file's numbered lines; for Markdown without its fenced code blocks (a diagram is not a link)."""
    lines, fenced = [], False
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if path.suffix == ".md" and line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def sections_of(architecture: Path) -> set[str]:
    """The numbers of the headings '## N. Title' and '### N.M Title'."""
    numbers = set()
    for _, line in prose_lines(architecture):
        heading = HEADING.match(line)
        number = heading and re.match(r"(\d+(?:\.\d+)?)\.?\s", heading.group(2))
        if number:
            numbers.add(number.group(1))
    return numbers


def habits_of(style: Path) -> set[str]:
    """The numbers of the items '1. ...' of the style guide's Habits section."""
    numbers, inside = set(), False
    for _, line in prose_lines(style):
        heading = HEADING.match(line)
        if heading:
            inside = "habits" in heading.group(2).lower()
        elif inside and (item := re.match(r"(\d+)\.\s", line)):
            numbers.add(item.group(1))
    return numbers


def broken_references(files: list[Path], sections: set[str], habits: set[str], root: Path = ROOT,
                      architecture: Path = ARCHITECTURE) -> list[str]:
    broken = []
    for path in files:
        for number, line in prose_lines(path):
            where = f"{path.relative_to(root)}:{number}"
            cited = [n for m in DESIGN_REF.finditer(line) for n in BARE_REF.findall(m.group(0))]
            if path == architecture:
                cited = BARE_REF.findall(line)
            broken += [f"{where}: DESIGN §{n}: no section {n} in docs/architecture.md" for n in cited
                       if n not in sections]
            broken += [f"{where}: STYLE {n}: no habit {n} in docs/style.md" for n in STYLE_REF.findall(line)
                       if n not in habits]
    return broken


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]{1,2}(?=\S)|(?<=\S)[`*_]{1,2}", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    for _, line in prose_lines(path):
        heading = HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            seen[base] = seen.get(base, -1) + 1
            seen.setdefault(f"{base}-{seen[base]}" if seen[base] else base, 0)
    return set(seen)


def broken_links(files: list[Path], root: Path = ROOT) -> list[str]:
    """Relative links of Markdown files whose file, or whose #anchor in a Markdown file, does not exist."""
    broken = []
    for path in files:
        for number, line in prose_lines(path):
            for target in LINK.findall(line):
                if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                    continue
                file_part, _, anchor = target.partition("#")
                linked = (path.parent / file_part).resolve() if file_part else path
                where = f"{path.relative_to(root)}:{number}: link {target!r}"
                if not linked.exists():
                    broken.append(f"{where}: no such file")
                elif anchor and linked.suffix == ".md" and anchor not in anchors_of(linked):
                    broken.append(f"{where}: no heading #{anchor} in {linked.relative_to(root)}")
    return broken


def test_every_design_and_style_reference_resolves():
    assert ARCHITECTURE.exists() and STYLE_DOC.exists()
    broken = broken_references(referencing_files(), sections_of(ARCHITECTURE), habits_of(STYLE_DOC))
    assert not broken, "\n".join(broken)


def test_the_docs_relative_links_resolve():
    docs = [p for p in referencing_files() if p.suffix == ".md"
            and (p.parent == ROOT or ROOT / "docs" in p.parents)]
    assert ROOT / "README.md" in docs and ARCHITECTURE in docs
    broken = broken_links(docs)
    assert not broken, "\n".join(broken)


def test_the_reference_check_names_what_does_not_resolve(tmp_path):
    (tmp_path / "docs").mkdir()
    architecture = tmp_path / "docs" / "architecture.md"
    architecture.write_text("# A\n## 1. Picture\n### 1.2 Detail\nsee §1.2 and §3\n```\n§9 in a diagram\n```\n")
    style = tmp_path / "docs" / "style.md"
    style.write_text("# S\n## Habits\n1. one\n2. two\n## Other\n3. not a habit\n[ok](architecture.md#1-picture) "
                     "[gone](missing.md) [bad](architecture.md#2-nothing) [web](https://example.org)\n")
    code = tmp_path / "code.py"
    # written with "@" for the section sign, so that this file's own check does not read these as references
    code.write_text('"""DESIGN @1, @1.2 and STYLE 2 resolve."""\n# DESIGN @8–@1; STYLE habit 3; STYLE 1\n'
                    .replace("@", "\N{SECTION SIGN}"))
    files = referencing_files(tmp_path)
    broken = broken_references(files, sections_of(architecture), habits_of(style), tmp_path, architecture)
    assert broken == ["code.py:2: DESIGN §8: no section 8 in docs/architecture.md",
                      "code.py:2: STYLE 3: no habit 3 in docs/style.md",
                      "docs/architecture.md:4: DESIGN §3: no section 3 in docs/architecture.md"]
    assert broken_links([style], tmp_path) == [
        "docs/style.md:7: link 'missing.md': no such file",
        "docs/style.md:7: link 'architecture.md#2-nothing': no heading #2-nothing in docs/architecture.md"]
