"""One HTTP POST to a webhook receiver, with the SSRF check, time-outs and a body cap.

The host is resolved and checked here, at send time, and the connection goes to the checked
address while the request keeps the URL's Host header and TLS server name (SNI, and the
certificate is verified for that name). Redirects are never followed; proxies from the
environment are ignored. Time-outs: connect WEBHOOK_CONNECT_TIMEOUT, the whole exchange
WEBHOOK_TIMEOUT; the response body is read up to WEBHOOK_RESPONSE_BODY_MAX bytes.

`post_signed_many` sends a batch at once, one thread per request, so a batch takes as long as
its slowest receiver (at most WEBHOOK_TIMEOUT), not the sum of them.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import lru_cache

import httpx
from django.conf import settings

from webhooks.ssrf import BlockedTarget, target_for

USER_AGENT = "ScaiWave-Webhooks/1.0"

logger = logging.getLogger("scaiwave.webhooks")

# Plain-http connections are pooled per worker process (keep-alive to busy receivers). TLS
# connections are not: a pooled connection is keyed by address, and two names served from one
# address must not share a TLS session made for the other's name.
_local = threading.local()


# Headers and body go out in two writes; without TCP_NODELAY, Nagle's algorithm holds the body back
# until the receiver's delayed ACK (~40 ms per delivery).
_SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle costs tens of milliseconds: once per process, not once per client or
    # per https delivery. A context is safe to share between threads.
    return httpx.create_ssl_context()


def _new_client(*, pooled: bool) -> httpx.Client:
    limits = (
        httpx.Limits(max_connections=50, max_keepalive_connections=20, keepalive_expiry=30)
        if pooled
        else httpx.Limits(max_keepalive_connections=0)
    )
    return httpx.Client(
        follow_redirects=False,
        trust_env=False,
        transport=httpx.HTTPTransport(verify=_tls_context(), socket_options=_SOCKET_OPTIONS, limits=limits, retries=0),
    )


def _http_client() -> httpx.Client:
    client = getattr(_local, "client", None)
    if client is None:
        client = _new_client(pooled=True)
        _local.client = client
    return client


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    error: str
    response_body: str
    duration_ms: int
    blocked: bool = False
    retry_after_seconds: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        """Network errors, time-outs, 408, 429 and 5xx are worth another try; the rest is final."""
        if self.blocked:
            return False
        if self.status_code is None:
            return True
        return self.status_code in (408, 429) or self.status_code >= 500


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after", "").strip()
    if raw.isdigit():
        return float(raw)
    return None


def post_signed(*, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
    """POST `body` to `url`. Never raises: the result says what happened.

    A URL the HTTP client cannot send (stored before registration checked it) is a final failure of this
    delivery, `invalid_url: ...`. Anything unforeseen is a retryable `send_error`, logged: one delivery's
    trouble must not escape into the batch that carries other endpoints' deliveries.
    """
    started = time.monotonic()
    try:
        return _post(url=url, body=body, headers=headers, started=started)
    except Exception as exc:
        logger.exception("webhook send failed unexpectedly")
        elapsed_ms = int((time.monotonic() - started) * 1000)
        return SendResult(None, f"send_error: {type(exc).__name__}", "", elapsed_ms)


def _post(*, url: str, body: bytes, headers: dict[str, str], started: float) -> SendResult:
    deadline = started + settings.WEBHOOK_TIMEOUT

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = target_for(url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE_TARGETS)
        original = httpx.URL(url)
    except BlockedTarget as exc:
        kind = "invalid_url" if exc.reason == "invalid_url" else "blocked_target"
        return SendResult(None, f"{kind}: {exc.detail}", "", elapsed_ms(), blocked=True)
    except httpx.InvalidURL as exc:
        return SendResult(None, f"invalid_url: {exc}", "", elapsed_ms(), blocked=True)
    except (OSError, UnicodeError) as exc:
        return SendResult(None, f"dns_error: {exc}", "", elapsed_ms())

    default_port = 443 if target.scheme == "https" else 80
    host_part = f"[{target.host}]" if ":" in target.host else target.host
    request_headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "host": host_part if target.port == default_port else f"{host_part}:{target.port}",
        **headers,
    }
    last_error = "no address"
    for address in target.addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return SendResult(None, "timeout: no answer within the time limit", "", elapsed_ms())
        timeout = httpx.Timeout(
            connect=min(settings.WEBHOOK_CONNECT_TIMEOUT, remaining), read=remaining, write=remaining, pool=remaining
        )
        request_url = original.copy_with(host=str(address))
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        client = _http_client() if target.scheme == "http" else _new_client(pooled=False)
        try:
            request = client.build_request(
                "POST", request_url, content=body, headers=request_headers, timeout=timeout, extensions=extensions
            )
            response = client.send(request, stream=True)
            try:
                captured = bytearray()
                cap = settings.WEBHOOK_RESPONSE_BODY_MAX
                for chunk in response.iter_raw():
                    captured.extend(chunk)
                    if len(captured) >= cap or time.monotonic() > deadline:
                        break
            finally:
                response.close()
            return SendResult(
                response.status_code,
                "" if 200 <= response.status_code < 300 else f"http_status: {response.status_code}",
                bytes(captured[:cap]).decode("utf-8", errors="replace"),
                elapsed_ms(),
                retry_after_seconds=_retry_after(response),
            )
        except httpx.ConnectTimeout:
            last_error = f"connect_timeout: {address}"
        except httpx.ConnectError as exc:
            last_error = f"connect_error: {address}: {exc}"
        except httpx.TimeoutException:
            return SendResult(None, "timeout: no answer within the time limit", "", elapsed_ms())
        except httpx.HTTPError as exc:
            return SendResult(None, f"network_error: {type(exc).__name__}: {exc}", "", elapsed_ms())
        finally:
            if target.scheme != "http":
                client.close()
    return SendResult(None, last_error, "", elapsed_ms())


@dataclass(frozen=True)
class SignedRequest:
    url: str
    body: bytes
    headers: dict[str, str]


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0


def _send_pool() -> ThreadPoolExecutor:
    """This process's sending threads, WEBHOOK_BATCH_SIZE of them, so a whole batch is sent at once.

    Made on first use in each process: threads do not survive the fork of a Celery pool process.
    Each thread keeps its own keep-alive connections (see _http_client).
    """
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=settings.WEBHOOK_BATCH_SIZE, thread_name_prefix="webhook-send")
            _pool_pid = os.getpid()
        return _pool


def _abandon_pool(pool: ThreadPoolExecutor) -> None:
    """Leave `pool` to its stuck threads; the next batch gets fresh ones."""
    global _pool
    with _pool_lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False)  # work already queued still runs on its threads that are free


# Past WEBHOOK_TIMEOUT plus this, a batch stops waiting for a request (see post_signed_many).
_STRAGGLER_GRACE_SECONDS = 2.0


def post_signed_many(requests: list[SignedRequest]) -> Iterator[list[tuple[int, SendResult]]]:
    """POST every request concurrently; yield (index, result) pairs in waves as they finish.

    A wave is every request finished by the time the caller asks for the next one, so the caller
    can record fast answers while a slow receiver is still being waited for. Never raises for a
    receiver's behaviour.

    The batch ends by WEBHOOK_TIMEOUT (plus a little grace), well inside the claim's lease: a
    receiver that trickles its answer a byte at a time beats the per-read time-out of the HTTP
    client, so requests still running then are reported as time-outs and their threads (and this
    pool) are left behind instead of wedging the worker's later batches.
    """
    pool = _send_pool()
    started = time.monotonic()
    deadline = started + settings.WEBHOOK_TIMEOUT + _STRAGGLER_GRACE_SECONDS
    futures: dict[Future[SendResult], int] = {
        pool.submit(post_signed, url=request.url, body=request.body, headers=request.headers): index
        for index, request in enumerate(requests)
    }
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=max(deadline - time.monotonic(), 0), return_when=FIRST_COMPLETED)
        if not done:
            _abandon_pool(pool)
            elapsed_ms = int((time.monotonic() - started) * 1000)
            late = SendResult(None, "timeout: no answer within the time limit", "", elapsed_ms)
            yield [(futures[future], late) for future in pending]
            return
        yield [(futures[future], _result_of(future, started)) for future in done]


def _result_of(future: Future[SendResult], started: float) -> SendResult:
    try:
        return future.result()
    except Exception as exc:  # post_signed never raises; kept so a batch survives it if it ever did
        return SendResult(None, f"send_error: {type(exc).__name__}", "", int((time.monotonic() - started) * 1000))
