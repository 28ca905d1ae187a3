"""The repository stands alone: a clone with nothing beside it has every file its code, tests and docs use."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from calls.live_testing import DOCUMENT, document_path, document_schemas

REPO = Path(settings.BASE_DIR)
# Folders that are not the project's own text (installed packages, runtime data, build output).
NOT_OURS = {".git", ".venv", "node_modules", "data", "artifacts", "__pycache__", ".mypy_cache", ".ruff_cache"}
# Built so that this file does not match itself.
OUTSIDE_REFERENCES = ("../" + "shared", "/work/" + "shared")


def _project_text_files() -> list[Path]:
    found = []
    for path in REPO.rglob("*"):
        if NOT_OURS.intersection(path.relative_to(REPO).parts) or not path.is_file():
            continue
        if path.suffix in {".py", ".md", ".toml", ".yml", ".yaml", ".cfg", ".txt"} or path.name == "Makefile":
            found.append(path)
    return found


def test_no_code_test_or_doc_reads_or_links_outside_the_repository() -> None:
    offenders = []
    for path in _project_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if any(reference in line for reference in OUTSIDE_REFERENCES):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_four_contract_documents_are_kept_in_the_repository() -> None:
    contracts = REPO / "docs" / "contracts"
    names = sorted(path.name for path in contracts.glob("*.txt"))
    assert [name[:4] for name in names] == ["000_", "001_", "002_", "003_"]
    readme = (contracts / "README.md").read_text(encoding="utf-8")
    for name in names:
        assert name in readme


def test_live_call_schemas_are_read_from_the_repository_copy_of_document_003() -> None:
    assert document_path() == REPO / "docs" / "contracts" / DOCUMENT
    assert set(document_schemas()) == {"request", "201", "502", "503"}
