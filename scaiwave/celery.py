"""The Celery app: JSON only, late acks, time limits (settings CELERY_*)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scaiwave.settings")

app = Celery("scaiwave")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["scaiwave.events"])
