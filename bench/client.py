"""A small HTTP/1.1 client on loopback: one keep-alive connection per instance (use one per thread),
cookies for a signed-in session, and the login form with its CSRF token."""

from __future__ import annotations

import http.client
import json
import re
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import urlencode


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float  # seconds, request sent → body read

    def json(self):
        return json.loads(self.body or b"null")


class Http:
    def __init__(self, port: int, *, token: str | None = None, timeout: float = 60.0):
        self.port, self.token, self.timeout = port, token, timeout
        self.cookies: dict[str, str] = {}
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        headers = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            conn = self._connection()
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (
                http.client.RemoteDisconnected,
                http.client.CannotSendRequest,
                BrokenPipeError,
                ConnectionResetError,
                http.client.BadStatusLine,
            ):
                self.close()
                if attempt == 2:
                    raise
                continue
            elapsed = time.perf_counter() - started
            if resp.getheader("Connection", "").lower() == "close":
                self.close()
            for value in resp.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(value).items():
                    self.cookies[name] = morsel.value
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, elapsed)
        raise AssertionError("unreachable")

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post_json(self, path: str, payload_bytes: bytes) -> Response:
        return self.request("POST", path, payload_bytes, {"Content-Type": "application/json"})

    def login(self, username: str, password: str) -> None:
        """Sign in through /login/ like a browser: the form's CSRF token and cookie, then POST."""
        page = self.get("/login/")
        match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)
        if page.status != 200 or not match:
            raise RuntimeError(f"/login/ answered {page.status} without a CSRF token")
        form = urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": match.group(1).decode()}
        ).encode()
        resp = self.request(
            "POST",
            "/login/",
            form,
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "Referer": f"http://127.0.0.1:{self.port}/login/",
            },
        )
        if resp.status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"login as {username} failed: {resp.status} {resp.body[:200]!r}")
