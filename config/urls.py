from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from leads import views as lead_views
from leads.api import api

admin.site.site_header = "Accord administration"
admin.site.site_title = "Accord"
admin.site.index_title = "Scoring, leads and feedback"

urlpatterns = [
    path("", lead_views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", lead_views.healthz, name="healthz"),
    path("api/v1/", api.urls),
    path("", include("handoff.urls")),
    path("reports/", include("handoff.reports.urls")),
    path("admin/", admin.site.urls),
]
