"""The docs name only what exists: every repo path in backticks and every relative link in
README.md and docs/*.md is a file or folder of the repository, and every bare source file
name (`deliver.py`) is the name of one. A rename that forgets the docs fails here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
TOP = {p.name for p in ROOT.iterdir() if not p.name.startswith(".")}
BARE_SOURCE = re.compile(r"[\w.-]+\.(py|sh|ps1)")


def named_paths(doc: Path, text: str) -> list[tuple[str, Path | None]]:
    """(as written, where it must be; None: a bare file name, somewhere in the repo). A
    backticked token is a repo path when its first part is a top-level entry; placeholders
    (<name>, *) and commands (with spaces) are not paths; links are relative to the doc."""
    found: list[tuple[str, Path | None]] = []
    for token in re.findall(r"`([^`\n]+)`", text):
        token = token.split(":")[0].rstrip(".,")
        if " " in token or any(c in token for c in "<>*{}$|~"):
            continue
        if "/" in token and token.split("/")[0] in TOP:
            found.append((token, ROOT / token))
        elif BARE_SOURCE.fullmatch(token):
            found.append((token, None))
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z]+:|#", target):
            found.append((target, doc.parent / target.split("#")[0]))
    return found


def _repo_names() -> set[str]:
    names: set[str] = set()
    for top in TOP:
        names |= {p.name for p in (ROOT / top).rglob("*") if ".venv" not in p.parts}
    return names | TOP


def test_docs_name_only_paths_that_exist() -> None:
    names = _repo_names()
    missing = [
        f"{doc.relative_to(ROOT)}: {written}"
        for doc in DOCS
        for written, where in named_paths(doc, doc.read_text(encoding="utf-8"))
        if not (where.exists() if where is not None else written in names)
    ]
    assert not missing, f"docs name paths that do not exist: {missing}"


def test_paths_are_recognised() -> None:
    doc = ROOT / "docs" / "ARCHITECTURE.md"
    text = "see `engine/nowhere.py`, `gone.py`, [x](../missing.md), not `vmb bench draft`"
    assert [w for w, _ in named_paths(doc, text)] == [
        "engine/nowhere.py",
        "gone.py",
        "../missing.md",
    ]
    written = [w for w, _ in named_paths(doc, doc.read_text(encoding="utf-8"))]
    assert "engine/score/cue_spec.py" in written and "engine/cli.py" in written
