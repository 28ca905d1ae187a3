"""Fill deploy/*.yaml's ${NAME} placeholders from the environment into an output folder (the `livekit-config`
one-shot service of docker-compose.yml, and `make prod-check`).

LiveKit, Egress and Ingress read plain YAML files; rendering them from the same variables ScaiWave reads keeps one
source for the API key, its secret and the webhook URL. A missing variable is an error, never an empty value.

    python deploy/render_config.py OUTPUT_DIR
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from string import Template

TEMPLATES = ("livekit.yaml", "egress.yaml", "ingress.yaml")


def render(template: str, environment: dict[str, str]) -> str:
    """The template with every ${NAME} replaced; raises KeyError naming the first variable that is not set."""
    return Template(template).substitute(environment)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    output = Path(argv[1])
    output.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).resolve().parent
    for name in TEMPLATES:
        try:
            text = render((here / name).read_text(encoding="utf-8"), dict(os.environ))
        except KeyError as missing:
            print(f"{name}: set {missing.args[0]}", file=sys.stderr)
            return 1
        (output / name).write_text(text, encoding="utf-8")
    print(f"rendered {', '.join(TEMPLATES)} into {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
