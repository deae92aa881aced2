"""Site-wide middleware of our own."""

import logging
import time

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


class ServerTimingMiddleware:
    """`Server-Timing: app;dur=<ms>, db;dur=<ms>;desc="<n> queries"` on every response, so the
    benchmark (and a browser's dev tools) can tell server time from network and queueing."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.db import connection

        timing = {"n": 0, "db": 0.0}

        def measure(execute, sql, params, many, context):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                timing["n"] += 1
                timing["db"] += time.perf_counter() - started

        started = time.perf_counter()
        with connection.execute_wrapper(measure):
            response = self.get_response(request)
        app_ms = (time.perf_counter() - started) * 1000
        response["Server-Timing"] = (
            f'app;dur={app_ms:.1f}, db;dur={timing["db"] * 1000:.1f};desc="{timing["n"]} queries"'
        )
        return response
