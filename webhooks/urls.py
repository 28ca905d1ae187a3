from django.urls import path

from webhooks import views

urlpatterns = [
    path("v1/webhooks", views.WebhookListView.as_view(), name="webhooks"),
    path("v1/webhooks/<str:webhookId>", views.WebhookDetailView.as_view(), name="webhook"),
    path("v1/webhooks/<str:webhookId>/test", views.WebhookTestView.as_view(), name="webhook-test"),
    path(
        "v1/webhooks/<str:webhookId>/rotate-secret",
        views.WebhookRotateSecretView.as_view(),
        name="webhook-rotate-secret",
    ),
    path("v1/webhooks/<str:webhookId>/deliveries", views.DeliveryListView.as_view(), name="webhook-deliveries"),
    path(
        "v1/webhooks/<str:webhookId>/deliveries/<str:deliveryId>/retry",
        views.DeliveryRetryView.as_view(),
        name="webhook-delivery-retry",
    ),
]
