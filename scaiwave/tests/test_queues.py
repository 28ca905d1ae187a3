"""Time-critical work has its own queues, and every queue has a worker in `make run` and in the test stacks."""

from __future__ import annotations

import sys

import pytest
from django.conf import settings

from scaiwave.celery import app
from scaiwave.management.commands.run_stack import worker_commands
from scaiwave.tests.fault_stack import WORKER_QUEUES_ARG
from webhooks.tests.workers import worker_argv

QUEUES = {"calls", "webhooks", "default", "transcription"}


def queue_of(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("calls.expire_ringing", "calls"),
        ("calls.live_advance", "calls"),
        ("scaiwave.events.redispatch", "calls"),
        ("webhooks.deliver", "webhooks"),
        ("webhooks.deliver_batch", "webhooks"),
        ("webhooks.sweep", "webhooks"),
        ("recordings.register_files", "default"),
        ("recordings.reconcile_egress", "default"),
        ("rooms.reconcile_livekit", "default"),
        ("transcription.tasks.transcription_run", "transcription"),
        ("analysis.process_call", "transcription"),
    ],
)
def test_each_kind_of_work_is_routed_to_its_queue(task, queue):
    assert queue_of(task) == queue


def test_every_registered_task_goes_to_a_known_queue():
    app.loader.import_default_modules()
    names = [name for name in app.tasks if not name.startswith("celery.")]
    assert len(names) > 10
    assert {queue_of(name) for name in names} <= QUEUES
    assert set(settings.WORKER_QUEUES) == QUEUES


def _consumed(argv: list[str]) -> set[str]:
    return set(argv[argv.index("-Q") + 1].split(","))


def test_make_run_consumes_every_queue_and_ringing_never_shares_a_worker_with_deliveries():
    workers = {name: _consumed(argv) for name, argv in worker_commands(sys.executable).items()}
    assert set().union(*workers.values()) == QUEUES
    for queues in workers.values():
        assert not {"calls", "webhooks"} <= queues
        assert not {"calls", "transcription"} <= queues


def test_the_test_stacks_workers_consume_every_queue():
    assert set(WORKER_QUEUES_ARG.split(",")) == QUEUES
    assert _consumed(worker_argv()) == QUEUES
