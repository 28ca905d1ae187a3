from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from scaiwave.health import HealthView, liveness, readiness

urlpatterns = [
    path("healthz", liveness, name="healthz"),
    path("readyz", readiness, name="readyz"),
    path("v1/health", HealthView.as_view(), name="health"),
    path("v1/schema", SpectacularAPIView.as_view(), name="schema"),
    path("v1/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("admin/", admin.site.urls),
    path("", include("rooms.urls")),
    path("", include("calls.urls")),
    path("", include("recordings.urls")),
    path("", include("transcription.urls")),
    path("", include("webhooks.intake_urls")),
    path("", include("webhooks.urls")),
    path("", include("webapp.urls")),
]

handler400 = "scaiwave.api.errors.handler400"
handler403 = "scaiwave.api.errors.handler403"
handler404 = "scaiwave.api.errors.handler404"
handler500 = "scaiwave.api.errors.handler500"
