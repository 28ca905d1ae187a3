"""Static assets (admin, Swagger UI) served by the app itself, so the embedded run needs no proxy."""

from __future__ import annotations

from typing import Any

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponseBase

from scaiwave.api.middleware import request_id_for


class StaticFiles(ASGIStaticFilesHandler):
    """Django's handler, with two differences. A path that climbs out of the static folders
    (`/static/..%2f..%2fsettings.py`) raised SuspiciousFileOperation past the handler (a text/plain 500
    and a logged traceback): it is a 404 problem, like any file we do not have. And every answer carries
    X-Request-Id, as the rest of the API's do (these requests never reach RequestIdMiddleware)."""

    def serve(self, request: HttpRequest) -> Any:
        try:
            return super().serve(request)
        except SuspiciousOperation:
            raise Http404("No such file.") from None

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        response = await super().get_response_async(request)
        response["X-Request-Id"] = request_id_for(request.META.get("HTTP_X_REQUEST_ID", ""))
        return response
