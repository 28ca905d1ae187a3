"""The embedded broker (no Redis) hands messages out in the order they were sent, whatever the uptime."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue

from scaiwave import broker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(name="connection")
def connection_fixture(tmp_path):
    options = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path), "store_processed": False,
               "control_folder": str(tmp_path / "control")}  # fmt: skip
    with Connection("filesystem://", transport=broker.FifoFilesystemTransport, transport_options=options) as conn:
        yield conn


def test_messages_keep_their_order_when_the_clock_gains_a_digit(connection, monkeypatch):
    # kombu's own names used the monotonic clock in ms: 9_999_999 then 10_000_000 sorted the newer one first.
    clock = iter([9_999_999_998, 9_999_999_999, 10_000_000_000, 10_000_000_001, 99_999_999_999, 100_000_000_000])
    monkeypatch.setattr(broker.time, "time_ns", lambda: next(clock))
    queue = Queue("calls", Exchange("calls"), routing_key="calls")
    with connection.Producer() as producer:
        for n in range(6):
            producer.publish({"n": n}, exchange=queue.exchange, routing_key="calls", declare=[queue])
    simple = connection.SimpleQueue(queue)
    received = [simple.get(timeout=1).payload["n"] for _ in range(6)]
    simple.close()
    assert received == [0, 1, 2, 3, 4, 5]


def test_file_names_sort_in_numeric_order_of_their_clock():
    stamps = [9, 10, 99, 100, 10**15, 10**18, 10**19]
    names = [broker.message_file_name("default", now_ns=stamp) for stamp in stamps]
    assert sorted(names) == names


def test_embedded_mode_uses_the_fifo_transport(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update({"DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "scaiwave.settings"})
    code = (
        "import django; django.setup(); from scaiwave.celery import app; "
        "print(app.connection_for_write().transport.__class__.__name__)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120, check=True)  # fmt: skip
    assert result.stdout.strip().splitlines()[-1] == "FifoFilesystemTransport"
