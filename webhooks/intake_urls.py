# The LiveKit webhook intake (POST /v1/calls/webhook), owned by webhooks/intake.py.
urlpatterns: list = []
