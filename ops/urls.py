from django.urls import path

from ops import views

app_name = "ops"
urlpatterns = [
    path("programs/", views.program_list, name="program-list"),
]
