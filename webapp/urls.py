"""`/app/`: the calls app (docs/app.md)."""

from django.urls import path

from webapp import views

urlpatterns = [
    path("app/", views.app_page, name="app"),
    path("app/session", views.SignInView.as_view(), name="app-session"),
    path("app/api/rooms", views.MyRoomsView.as_view(), name="app-rooms"),
    path("app/api/rooms/<str:room_id>/members", views.RoomMembersView.as_view(), name="app-room-members"),
]
