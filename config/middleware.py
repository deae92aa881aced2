"""Site-wide middleware of our own."""

import logging

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse

log = logging.getLogger(__name__)

UNAVAILABLE = (OperationalError, InterfaceError)


class DatabaseUnavailableMiddleware:
    """Answer a clean 503 (with Retry-After) instead of a 500 traceback while the database is
    unreachable, e.g. during a restart. Django's connection health checks reconnect by themselves
    once it is back, so nothing needs restarting."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, UNAVAILABLE) or _is_query_error(exception):
            return None
        log.warning("database unavailable for %s %s: %s", request.method, request.path, exception)
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": "database unavailable, retry shortly"}, status=503)
        else:
            response = HttpResponse(
                "<!doctype html><title>Accord is briefly unavailable</title>"
                "<h1>Accord is briefly unavailable</h1><p>Please try again in a few seconds.</p>",
                status=503,
            )
        response["Retry-After"] = "5"
        return response


def _is_query_error(exc: DatabaseError) -> bool:
    """OperationalError also covers bad queries on some backends; only connection trouble is a 503."""
    text = str(exc).lower()
    return not any(
        hint in text
        for hint in ("connect", "connection", "server closed", "terminating", "shutting down", "starting up",
                     "the database system is", "no route", "timeout", "broken pipe", "database is locked")
    )
