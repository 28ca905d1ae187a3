"""The operators' dashboard at the top of the admin index: what is happening now, what failed lately.

Each figure links to the changelist filtered to the rows it counts. Counts are capped (CAP) so a busy
installation never pays for a full COUNT(*) on its big tables on every page view.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

from django.apps import apps
from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from calls.models import Call, CallParticipant
from recordings.models import Recording
from rooms.models import RoomParticipant
from webhooks.models.intake import LiveKitEvent

CAP = 1000


@dataclass(frozen=True)
class Figure:
    label: str
    value: int | None  # None: not available here
    url: str = ""
    capped: bool = False
    note: str = ""
    alarming: bool = False  # drawn in red when above zero


def _count(queryset: QuerySet) -> tuple[int, bool]:
    counted = int(queryset.order_by()[: CAP + 1].count())
    return min(counted, CAP), counted > CAP


def _changelist(model: str, **params: str) -> str:
    app_label, model_name = model.split(".")
    url = reverse(f"admin:{app_label}_{model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def _figure(label: str, queryset: QuerySet, url: str, *, alarming: bool = False) -> Figure:
    value, capped = _count(queryset)
    return Figure(label=label, value=value, url=url, capped=capped, alarming=alarming)


def celery_queue_names() -> list[str]:
    names = {settings.CELERY_TASK_DEFAULT_QUEUE}
    for route in getattr(settings, "CELERY_TASK_ROUTES", {}).values():
        if isinstance(route, dict) and route.get("queue"):
            names.add(str(route["queue"]))
    return sorted(names)


def queue_depth() -> Figure:
    """Tasks waiting in the broker: LLEN of each queue on Redis, files waiting in the filesystem broker's folder."""
    label = "Tasks waiting in the queue"
    if settings.REDIS_URL:
        import redis

        names = celery_queue_names()
        try:
            client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
            with client:
                depths = {name: int(client.llen(name)) for name in names}
        except redis.RedisError as exc:
            return Figure(label=label, value=None, note=f"Redis did not answer: {exc}")
        detail = ", ".join(f"{name}: {depth}" for name, depth in depths.items())
        return Figure(label=label, value=sum(depths.values()), note=detail)
    folder = Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in", settings.BROKER_DIR / "in")))
    waiting = sum(1 for entry in folder.iterdir() if entry.is_file()) if folder.is_dir() else 0
    return Figure(label=label, value=waiting, note=f"filesystem broker: {folder}")


def failed_deliveries(since: str) -> Figure:
    label = "Failed webhook deliveries (24 h)"
    try:
        delivery = apps.get_model("webhooks", "Delivery")
    except LookupError:
        return Figure(label=label, value=None, note="not available: outbound webhooks are not installed")
    failed = delivery.objects.filter(status__in=("failed", "dead"), updated_at__gte=since)
    value, capped = _count(failed)
    return Figure(
        label=label,
        value=value,
        capped=capped,
        url=_changelist("webhooks.delivery", status__in="failed,dead", updated_at__gte=since),
        alarming=True,
    )


def dashboard_figures() -> list[Figure]:
    now = timezone.now()
    since = (now - timedelta(hours=24)).strftime("%Y-%m-%d %H:%M:%S%z")
    live = ",".join(Call.LIVE_STATUSES)
    active = ",".join(Recording.ACTIVE_STATUSES)
    failures = ",".join(Recording.FAILURE_STATUSES)
    return [
        _figure(
            "Live calls now",
            Call.objects.filter(status__in=Call.LIVE_STATUSES),
            _changelist("calls.call", status__in=live),
        ),
        _figure(
            "Participants in calls now",
            CallParticipant.objects.filter(
                call__status__in=Call.LIVE_STATUSES, joined_at__isnull=False, left_at__isnull=True
            ),
            _changelist("calls.call", status__in=live),
        ),
        _figure(
            "Participants in rooms now",
            RoomParticipant.objects.filter(state=RoomParticipant.State.JOINED),
            _changelist("rooms.roomparticipant", state__exact=RoomParticipant.State.JOINED),
        ),
        _figure(
            "Recordings in progress",
            Recording.objects.filter(status__in=Recording.ACTIVE_STATUSES),
            _changelist("recordings.recording", status__in=active),
        ),
        _figure(
            "Failed recordings (24 h)",
            Recording.objects.filter(status__in=Recording.FAILURE_STATUSES, finished_at__gte=since),
            _changelist("recordings.recording", status__in=failures, finished_at__gte=since),
            alarming=True,
        ),
        failed_deliveries(since),
        _figure(
            "LiveKit events that failed to apply (24 h)",
            LiveKitEvent.objects.filter(outcome=LiveKitEvent.Outcome.FAILED, created_at__gte=since),
            _changelist("webhooks.livekitevent", outcome__exact="failed", created_at__gte=since),
            alarming=True,
        ),
        queue_depth(),
    ]
