from celery import shared_task

from scaiwave.events.services import events_redispatch


@shared_task(name="scaiwave.events.redispatch", acks_late=True, time_limit=120, soft_time_limit=100)
def redispatch_events() -> int:
    return events_redispatch()
