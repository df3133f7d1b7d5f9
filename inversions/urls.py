from django.urls import path

from inversions import views

app_name = "inversions"
urlpatterns = [
    path("programs/<str:program_id>/report-done/", views.report_done, name="report-done"),
    path("programs/<str:program_id>/actions/<slug:action>/", views.program_action, name="program-action"),
    path("programs/<str:program_id>/quicklooks/<str:name>", views.quicklook, name="quicklook"),
    path("work/", views.work_queue, name="queue"),
    path("charts/", views.charts, name="charts"),
    path("campaigns/", views.campaign_list, name="campaigns"),
    path("campaigns/new/", views.campaign_new, name="campaign-new"),
    path("campaigns/<int:campaign_id>/", views.campaign_detail, name="campaign"),
    path("campaigns/<int:campaign_id>/confirm/", views.campaign_confirm, name="campaign-confirm"),
]
