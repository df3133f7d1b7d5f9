"""Globus login and Globus's file picker; included at ``accounts/globus/`` in level2/urls.py."""

from django.urls import path

from inversions import globus_login, globus_picker

app_name = "globus"
urlpatterns = [
    path("login/", globus_login.start, name="login"),
    path("login/callback/", globus_login.callback, name="login-callback"),
    path("picker/<str:program_id>/", globus_picker.picker_callback, name="picker-callback"),
]
