"""What the image's `COPY . .` takes, after .dockerignore: never the virtualenv, runtime data, .env or keys.

The rules are applied as Docker's builder applies them (moby's patternmatcher): each pattern is matched against
the path relative to the context and against each of its parent folders, `*` stays within one folder, `**` spans
any number, and the last matching line wins (`!` re-includes).
"""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

REPO = Path(settings.BASE_DIR)
SECRET_NAMES = {"secret_key", ".env", "id_rsa"}
SECRET_SUFFIXES = {".pem", ".key"}


def _regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def dockerignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = line[1:].strip() if include else line
        rules.append((include, _regex(pattern.strip("/"))))
    return rules


def excluded(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = relative.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for include, regex in rules:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            result = not include
    return result


def build_context(root: Path) -> list[str]:
    """Every file `COPY . .` would take from `root`, as paths relative to it."""
    rules = dockerignore_rules((REPO / ".dockerignore").read_text(encoding="utf-8"))
    taken = []
    for path in root.rglob("*"):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not path.is_symlink() and not excluded(relative, rules):
            taken.append(relative)
        elif path.is_symlink() and not excluded(relative, rules):
            taken.append(relative)  # a symlink is copied as a link: it must be ignored, not followed
    return taken


def _secret_like(relative: str) -> bool:
    parts = relative.split("/")
    name = parts[-1]
    return (
        name in SECRET_NAMES
        or (name.startswith(".env") and name != ".env.example")
        or Path(name).suffix in SECRET_SUFFIXES
        or any(part in {".venv", "data", ".git", "node_modules", "artifacts"} for part in parts)
    )


def test_the_image_takes_no_virtualenv_data_env_or_secrets_from_this_checkout() -> None:
    taken = build_context(REPO)
    assert [path for path in taken if _secret_like(path)] == []


def test_the_image_takes_what_it_runs() -> None:
    taken = set(build_context(REPO))
    for needed in ("manage.py", "requirements.txt", "requirements-models.txt", "scaiwave/settings.py",
                   "deploy/render_config.py", ".env.example"):  # fmt: skip
        assert needed in taken


def test_a_checkout_that_has_run_keeps_its_data_and_secrets_out_of_the_image(tmp_path: Path) -> None:
    # What `make run` and a deployer leave behind in a checkout.
    for relative in (".venv/lib/python3.11/site-packages/django/__init__.py", "data/scaiwave.sqlite3",
                     "data/secret_key", "data/media/recordings/a.mp4", ".env", ".env.production",
                     "deploy/tls/server.key", "deploy/tls/server.pem", "artifacts/screenshots/x.png",
                     ".git/HEAD", "node_modules/x/index.js", "scaiwave/__pycache__/settings.cpython-311.pyc",
                     "scaiwave/settings.py", ".env.example", "deploy/Caddyfile"):  # fmt: skip
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")

    assert sorted(build_context(tmp_path)) == [".env.example", "deploy/Caddyfile", "scaiwave/settings.py"]
