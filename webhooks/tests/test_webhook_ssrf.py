"""SSRF protection: only public addresses, checked at save time and again at every send."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys

import pytest
from django.db import transaction

from scaiwave.events.services import event_emit
from webhooks.models import Delivery
from webhooks.services import webhook_create, webhook_send_test
from webhooks.ssrf import address_block_reason
from webhooks.tests.receivers import (  # noqa: F401 - fixtures
    WebhookReceiver,
    receiver_fixture,
    webhook_settings_fixture,
)

BLOCKED = [
    ("127.0.0.1", "loopback"),
    ("127.1.2.3", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "metadata"),
    ("169.254.10.10", "link_local"),
    ("100.64.0.1", "cgnat"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.251", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("198.18.0.1", "reserved"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link_local"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::ffff:10.0.0.1", "private"),
    ("64:ff9b::a9fe:a9fe", "metadata"),
    ("2002:7f00:1::", "loopback"),
    ("fd00:ec2::254", "metadata"),
]


@pytest.mark.parametrize(("address", "reason"), BLOCKED)
def test_each_non_public_range_is_blocked(address, reason):
    assert address_block_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address):
    assert address_block_reason(ipaddress.ip_address(address)) is None


def _url(address: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:8080/hook"


@pytest.mark.django_db
@pytest.mark.parametrize(("address", "reason"), BLOCKED)
def test_registering_a_blocked_address_is_a_400(acme, settings, address, reason):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    response = acme.server().post("/v1/webhooks", {"url": _url(address)}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "webhook_url_blocked"
    assert response.json()["reason"] == reason


@pytest.mark.django_db
def test_a_hostname_resolving_to_loopback_is_blocked(acme, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    response = acme.server().post("/v1/webhooks", {"url": "http://localhost:8080/hook"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "webhook_url_blocked"
    assert "localhost" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "gopher://example.com",
        "http://",
        "nope",
        "http://user:pw@example.com/",
    ],
)
def test_only_plain_http_and_https_urls_are_accepted(acme, url):
    response = acme.server().post("/v1/webhooks", {"url": url}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_webhook_url"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("webhook_settings")
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_blocked_target_is_never_contacted_at_send_time(acme, receiver, settings, host):
    # Saved while private targets were allowed; the check at send time still refuses it.
    endpoint, _ = webhook_create(tenant=acme.tenant, url=receiver.url.replace("127.0.0.1", host))
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with transaction.atomic():
        event_emit(tenant=acme.tenant, type="room_created", data={})
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert delivery.status == "failed" and delivery.last_error.startswith("blocked_target")
    assert receiver.requests == []
    assert webhook_send_test(endpoint=endpoint).status == "failed"
    assert receiver.requests == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("webhook_settings")
def test_a_name_that_changes_to_a_private_address_after_saving_is_blocked(acme, receiver, settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    real_getaddrinfo = socket.getaddrinfo
    answers = {"hooks.example.test": "93.184.216.34"}

    def fake_dns(host, port, *args, **kwargs):  # the one outside thing we stand in for: DNS
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_dns)
    url = f"http://hooks.example.test:{receiver.port}/hook"
    response = acme.server().post("/v1/webhooks", {"url": url}, format="json")
    assert response.status_code == 201
    answers["hooks.example.test"] = "127.0.0.1"  # DNS rebinding
    result = acme.server().post(f"/v1/webhooks/{response.json()['id']}/test").json()
    assert result["delivered"] is False and result["statusCode"] is None
    assert "blocked_target" in result["error"]
    assert receiver.requests == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("webhook_settings")
def test_the_request_goes_to_the_checked_address_with_the_original_host_header(acme, receiver, monkeypatch):
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def fake_dns(host, port, *args, **kwargs):
        if host == "hooks.example.test":
            lookups.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_dns)
    endpoint, _ = webhook_create(tenant=acme.tenant, url=f"http://hooks.example.test:{receiver.port}/hook?x=1")
    lookups.clear()
    assert webhook_send_test(endpoint=endpoint).status == "delivered"
    [request] = receiver.requests
    assert request.headers["host"] == f"hooks.example.test:{receiver.port}"
    assert request.path == "/hook?x=1"
    assert lookups == ["hooks.example.test"]  # resolved once, by the check; the connection reused its answer


@pytest.mark.parametrize(("mode", "expected"), [("embedded", "True"), ("production", "False")])
def test_private_targets_are_allowed_by_default_only_in_embedded_mode(mode, expected, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "WEBHOOK_ALLOW_PRIVATE_TARGETS"}
    env.update(SCAIWAVE_MODE=mode, SECRET_KEY="x" * 50, DATA_DIR=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", "import scaiwave.settings as s; print(s.WEBHOOK_ALLOW_PRIVATE_TARGETS)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == expected
