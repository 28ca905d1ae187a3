"""The version is written in one place (scaiwave/__init__.py) and every other place reads it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from django.conf import settings

import scaiwave

REPO = Path(settings.BASE_DIR)


def test_pyproject_reads_its_version_from_the_package() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "scaiwave.__version__"}


def test_version_is_a_release_number_with_a_changelog_entry() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", scaiwave.__version__)
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{scaiwave.__version__}]" in changelog


@pytest.mark.django_db
def test_health_reports_the_package_version_in_document_001s_shape(acme) -> None:
    body = acme.server().get("/v1/health").json()
    assert body["version"] == scaiwave.__version__
    assert set(body) == {"status", "version", "capabilities"}


def test_openapi_document_carries_the_package_version() -> None:
    assert settings.SPECTACULAR_SETTINGS["VERSION"] == scaiwave.__version__
