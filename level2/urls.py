from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from inversions import health
from inversions import views as inversions_views
from inversions.api import api
from level2.views import favicon

urlpatterns = [
    # The lead's work board: where the day starts.
    path("", inversions_views.board, name="board"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/globus/", include("inversions.globus_urls")),
    path("favicon.ico", favicon),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    # Prometheus; /healthz and /readyz are answered by inversions.health's middleware.
    path("metrics", health.metrics, name="metrics"),
    # The programs table and an OP's page: what ops knows, with the inversions app's facts.
    path("programs/", inversions_views.program_list, name="program-list"),
    path("programs/<str:program_id>/", inversions_views.program_detail, name="program-detail"),
    path("", include("ops.urls")),
    path("", include("inversions.urls")),
]

# Refusals in the layout, saying why and whom to ask (inversions.access).
handler403 = "inversions.access.permission_denied"
