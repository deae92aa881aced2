from django.urls import path

from . import views

app_name = "reports"
urlpatterns = [
    path("", views.index, name="index"),
    *(
        path(f"{report.slug}/", views.report, {"slug": report.slug}, name=report.slug)
        for report in views.REPORTS
    ),
]
