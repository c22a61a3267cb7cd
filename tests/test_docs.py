"""The repository stands on its own: it cites its own docs, and its doc links resolve."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Built from parts so that this file does not match itself.
FOREIGN = re.compile("SPEC" + r" §|\b[Ii]ssue" + r" \d+|\bissues? #\d+")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z", *patterns], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [ROOT / name for name in out.split("\0") if name]


def test_no_file_cites_documents_the_repository_does_not_have():
    """Code, docs and tests point to docs/*.md, never to a spec section or an issue number."""
    files = _tracked()
    assert len(files) > 100, "git ls-files found too few files to mean anything"
    found = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):  # a symlinked folder
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if FOREIGN.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


def test_links_between_docs_resolve():
    """Every relative link in README.md and docs/*.md names a file that exists."""
    broken = []
    for doc in _tracked("README.md", "docs/*.md"):
        for target in LINK.findall(doc.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert broken == []
