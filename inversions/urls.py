from django.urls import path

from inversions import views

app_name = "inversions"
urlpatterns = [
    path("programs/<str:program_id>/report-done/", views.report_done, name="report-done"),
    path("programs/<str:program_id>/actions/<slug:action>/", views.program_action, name="program-action"),
    path("programs/<str:program_id>/quicklooks/<str:name>", views.quicklook, name="quicklook"),
    path("work/", views.work_queue, name="queue"),
    path("charts/", views.charts, name="charts"),
]
