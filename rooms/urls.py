"""Routes of the rtcstack surface (document 001) and the member endpoints."""

from django.urls import path

from rooms import views

urlpatterns = [
    path("v1/token", views.TokenView.as_view(), name="token"),
    path("v1/token/refresh", views.TokenRefreshView.as_view(), name="token-refresh"),
    path("v1/rooms", views.RoomsView.as_view(), name="rooms"),
    path("v1/rooms/<str:room_id>", views.RoomDetailView.as_view(), name="room-detail"),
    path("v1/rooms/<str:room_id>/participants", views.ParticipantsView.as_view(), name="room-participants"),
    path(
        "v1/rooms/<str:room_id>/participants/<str:participant_id>",
        views.ParticipantDetailView.as_view(),
        name="room-participant",
    ),
    path(
        "v1/rooms/<str:room_id>/participants/<str:participant_id>/mute",
        views.ParticipantMuteView.as_view(),
        name="room-participant-mute",
    ),
    path("v1/rooms/<str:room_id>/ingress", views.IngressView.as_view(), name="room-ingress"),
    path(
        "v1/rooms/<str:room_id>/ingress/<str:ingress_id>", views.IngressDetailView.as_view(), name="room-ingress-detail"
    ),
    path("v1/rooms/<str:room_id>/members", views.MembersView.as_view(), name="room-members"),
    path("v1/rooms/<str:room_id>/members/<str:user_id>", views.MemberDetailView.as_view(), name="room-member"),
]
