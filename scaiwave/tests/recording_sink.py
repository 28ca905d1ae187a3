"""A sink for tests: remembers the events it saw, and can be told to fail."""

from scaiwave.models import Event

seen: list[str] = []
fail_next: list[bool] = []


def sink(event: Event) -> None:
    if fail_next:
        fail_next.pop()
        raise ConnectionError("broker down")
    seen.append(event.id)
