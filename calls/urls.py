"""The ScaiWave calls surface. The recording endpoints (`/v1/calls/{id}/recording/...`) live in
recordings/urls.py and the LiveKit intake (`/v1/calls/webhook`) in webhooks/intake_urls.py."""

from django.urls import include, path, re_path

from calls import views

# Any single path segment except the two fixed names served on the same prefix.
CALL_ID = r"(?P<call_id>(?!(?:webhook|initiate)$)[^/]+)"

urlpatterns = [
    path("v1/calls/initiate", views.CallInitiateView.as_view(), name="call-initiate"),
    re_path(rf"^v1/calls/{CALL_ID}/join$", views.CallJoinView.as_view(), name="call-join"),
    re_path(rf"^v1/calls/{CALL_ID}/leave$", views.CallLeaveView.as_view(), name="call-leave"),
    re_path(rf"^v1/calls/{CALL_ID}/reject$", views.CallRejectView.as_view(), name="call-reject"),
    re_path(rf"^v1/calls/{CALL_ID}/end$", views.CallEndView.as_view(), name="call-end"),
    re_path(rf"^v1/calls/{CALL_ID}$", views.CallStateView.as_view(), name="call-state"),
    path("v1/rooms/<str:room_id>/calls", views.RoomCallsView.as_view(), name="room-calls"),
    path("v1/rooms/<str:room_id>/timeline", views.RoomTimelineView.as_view(), name="room-timeline"),
    path("", include("calls.live_urls")),
]
