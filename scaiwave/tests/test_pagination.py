"""Keyset cursors neither skip nor repeat rows while new rows arrive."""

from __future__ import annotations

import pytest

from scaiwave.api.errors import ProblemError
from scaiwave.api.pagination import paginate, parse_limit
from scaiwave.models import TenantUser

pytestmark = pytest.mark.django_db


def test_pages_cover_every_row_once_while_rows_are_added(acme):
    for i in range(25):
        TenantUser.objects.create(tenant=acme.tenant, external_id=f"u{i:02d}")
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = paginate(TenantUser.objects.filter(tenant=acme.tenant), cursor=cursor, limit=10)
        seen.extend(user.pk for user in page.items)
        # Newer rows arriving between pages sort before the cursor and must not shift the walk.
        TenantUser.objects.create(tenant=acme.tenant, external_id=f"late{pages}")
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 25
    assert pages == 3


def test_bad_cursor_is_a_400_problem(acme):
    with pytest.raises(ProblemError) as caught:
        paginate(TenantUser.objects.all(), cursor="!!garbage", limit=10)
    assert caught.value.status == 400 and caught.value.code == "invalid_cursor"


@pytest.mark.parametrize("raw", ["0", "101", "abc"])
def test_limit_out_of_range_is_rejected(raw):
    with pytest.raises(ProblemError):
        parse_limit(raw)


def test_limit_defaults_to_50():
    assert parse_limit(None) == 50
