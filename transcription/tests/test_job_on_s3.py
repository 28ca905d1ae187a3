"""A job whose recording lives in S3 (moto's server over HTTP): the file is copied to a temporary file and back."""

from __future__ import annotations

import pytest

from recordings.tests.conftest import moto_server, s3_storage  # noqa: F401  (fixtures used by name)
from transcription.models import Transcription
from transcription.tasks import transcription_run_task
from transcription.tests.conftest import librivox_clip, normalise
from transcription.tests.factories import composite_add, recording_make, room_make


@pytest.mark.usefixtures("s3_storage", "stt_engine")
def test_a_recording_stored_in_s3_is_transcribed(acme) -> None:
    from django.core.files.storage import default_storage

    recording = recording_make(room_make(acme.tenant))
    entry = composite_add(recording, librivox_clip("0880")[0])
    with pytest.raises(NotImplementedError):
        default_storage.path(entry.key)  # really not on the local disk
    job = Transcription.objects.create(tenant=acme.tenant, recording=recording)

    transcription_run_task(job.pk)

    job.refresh_from_db()
    assert job.status == "completed", job.error
    assert "young man" in normalise(" ".join(job.segments.values_list("text", flat=True)))
