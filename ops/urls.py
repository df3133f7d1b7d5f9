from django.urls import path

from ops import views

app_name = "ops"
urlpatterns = [
    path("proposals/", views.proposal_list, name="proposal-list"),
    path("proposals/<str:proposal_id>/", views.proposal_detail, name="proposal-detail"),
    path("scans/", views.scan_list, name="scan-list"),
    path("scans/start/", views.scan_start, name="scan-start"),
    path("scans/<int:scan_id>/", views.scan_detail, name="scan-detail"),
]
