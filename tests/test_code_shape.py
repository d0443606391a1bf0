"""The shape the team keeps (issue #14, docs/style.md): no product module over 300 lines, no function over 60;
every doc reference resolves (issue #26)."""

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
