"""Traffic generators. Every loop is bounded by a deadline, and every request has a timeout.

- IngestPool: the interactions the load posts (page views and email clicks for existing low-score
  leads, a few new leads). Their rules are capped (10 points each), so however much the load posts
  no lead crosses the MQL threshold: the board and reports keep the generated shape.
- closed_loop(): N clients posting back to back until a deadline (ingest throughput).
- Paced: a steady rate in fixed-size batches from a small thread pool (freshness background).
- probe(): one probe interaction and the 20 ms polling of the lead until its new score is readable.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from .client import Http
from .datagen import BENCH_ID_PREFIX, NEW_LEAD_DOMAIN

API = "/api/v1/interactions"
PATHS = ("/", "/product", "/product/scoring", "/blog/what-is-an-mql", "/customers", "/integrations")


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class IngestPool:
    """Makes interaction items with unique external ids for a pool of (id, email) leads."""

    def __init__(
        self, leads: list[tuple[int, str]], kinds: dict[str, int], run_id: str, new_share: float = 0.02
    ):
        self.leads, self.kinds, self.run_id, self.new_share = leads, kinds, run_id, new_share
        self.counter = itertools.count(1)
        self.local = threading.local()

    def _rng(self) -> random.Random:
        if not hasattr(self.local, "rng"):
            self.local.rng = random.Random(threading.get_ident())
        return self.local.rng

    def item(self) -> dict:
        rng, n = self._rng(), next(self.counter)
        kind = "page_view" if rng.random() < 0.75 else "email_click"
        item = {
            "external_id": f"{BENCH_ID_PREFIX}{self.run_id}-{n}",
            "occurred_at": iso(datetime.now(UTC) - timedelta(seconds=rng.random() * 3600)),
            "kind": kind,
            "properties": {"path": rng.choice(PATHS)} if kind == "page_view" else {},
        }
        if rng.random() < self.new_share:
            item["email"] = f"visitor{self.run_id}.{n}@{NEW_LEAD_DOMAIN}"
            item["lead"] = {
                "first_name": "Visitor",
                "company": "Unknown",
                "job_title": "Analyst",
                "company_size": 5,
                "country": "us",
                "source": "inbound",
            }
        else:
            item["email"] = rng.choice(self.leads)[1]
        return item

    def batch(self, size: int) -> bytes:
        return json.dumps({"interactions": [self.item() for _ in range(size)]}).encode()

    def single(self) -> bytes:
        return json.dumps(self.item()).encode()

    def copy_rows(self, count: int) -> list[tuple]:
        """Rows shaped like what the API stores for `count` such items (for the COPY floor)."""
        rng, now = random.Random(count), datetime.now(UTC)
        page, click = self.kinds["page_view"], self.kinds["email_click"]
        rows = []
        for n in range(count):
            is_page = rng.random() < 0.75
            rows.append(
                (
                    rng.choice(self.leads)[0],
                    page if is_page else click,
                    now - timedelta(seconds=rng.random() * 3600),
                    json.dumps({"path": rng.choice(PATHS)} if is_page else {}),
                    f"floor-{self.run_id}-{n}",
                    now,
                )
            )
        return rows


class Prepared:
    """Request bodies made before the timed loop, as the COPY floor's rows are: building JSON is
    the load's work, not the server's, and on two shared cores it took CPU from the server (about
    a tenth of a core at batch ingest). A loop that outruns them gets bodies made on the fly."""

    def __init__(self, make, count: int):
        self.make = make
        self.bodies = deque(make() for _ in range(count))
        self.prepared, self.made_late = count, 0

    def __call__(self) -> bytes:
        try:
            return self.bodies.popleft()  # deque: safe across the loop's threads
        except IndexError:
            self.made_late += 1
            return self.make()


@dataclass
class LoopResult:
    accepted: int = 0
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)


def closed_loop(port: int, token: str, clients: int, seconds: float, body) -> LoopResult:
    """`clients` threads, each posting body() back to back until the deadline; one keep-alive
    connection each. The wall time runs until the last request in flight has answered."""
    result, lock = LoopResult(), threading.Lock()
    deadline = time.perf_counter() + seconds

    def client():
        http = Http(port, token=token, timeout=120)
        try:
            while time.perf_counter() < deadline:
                payload = body()
                try:
                    resp = http.post_json(API, payload)
                except OSError:
                    with lock:
                        result.errors += 1
                    continue
                with lock:
                    result.requests += 1
                    result.latencies.append(resp.elapsed)
                    result.statuses[resp.status] = result.statuses.get(resp.status, 0) + 1
                    if resp.status == 202:
                        result.accepted += resp.json()["accepted"]
                    else:
                        result.errors += 1
        finally:
            http.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 180)
    result.seconds = time.perf_counter() - started
    return result


class Paced:
    """A steady `rate` of interactions/s in batches of `batch`, sent on a fixed schedule by up to
    `workers` threads. A tick that finds every worker busy is counted as missed, never queued, so
    the offered load stays bounded. Use as a context manager."""

    def __init__(
        self, port: int, token: str, pool: IngestPool, rate: float = 1000, batch: int = 50, workers: int = 8
    ):
        self.port, self.token, self.pool, self.batch, self.workers = port, token, pool, batch, workers
        self.interval = batch / rate
        self.stop = threading.Event()
        self.sent = self.accepted = self.missed = self.errors = 0
        self.busy = 0
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        self.local = threading.local()
        self.started = self.ended = 0.0

    def _send(self) -> None:
        http = getattr(self.local, "http", None)
        if http is None:
            http = self.local.http = Http(self.port, token=self.token, timeout=30)
        try:
            resp = http.post_json(API, self.pool.batch(self.batch))
            with self.lock:
                self.latencies.append(resp.elapsed)
                if resp.status == 202:
                    self.accepted += resp.json()["accepted"]
                else:
                    self.errors += 1
        except OSError:
            with self.lock:
                self.errors += 1
        finally:
            with self.lock:
                self.busy -= 1

    def _run(self) -> None:
        with ThreadPoolExecutor(self.workers) as executor:
            next_tick = time.perf_counter()
            while not self.stop.is_set():
                with self.lock:
                    free = self.busy < self.workers
                    if free:
                        self.busy += 1
                        self.sent += self.batch
                    else:
                        self.missed += self.batch
                if free:
                    executor.submit(self._send)
                next_tick += self.interval
                self.stop.wait(max(0.0, next_tick - time.perf_counter()))

    def __enter__(self) -> Paced:
        self.started = time.perf_counter()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(60)
        self.ended = time.perf_counter()

    @property
    def achieved(self) -> float:
        return self.accepted / max(1e-9, (self.ended or time.perf_counter()) - self.started)


def _demo_points(lead: dict) -> float:
    return sum(row["points"] for row in lead.get("breakdown") or [] if row.get("label") == "Demo request")


@dataclass
class Probe:
    email: str
    path: str
    base: dict
    sent: float  # perf_counter when the POST was sent
    post_s: float  # the POST's own latency
    get_s: float  # one GET's latency (the baseline read)
    score_s: float | None = None  # POST sent → new score readable
    mql_s: float | None = None  # POST sent → stage mql readable (when it became one)
    polls: int = 0
    external_id: str = ""

    @property
    def want(self) -> float:
        return _demo_points(self.base) + 39.5


class Prober:
    """Probe interactions and the polling of their leads, on one connection, one request at a time.

    A probe is a demo_request (+40, no decay) for a lead with no demo request yet; it is visible
    when GET /api/v1/leads/<email> shows the Demo request rule's points up by 40. A new probe starts
    every `spacing` seconds; the probes in flight are polled round-robin, one GET every `interval`
    (20 ms), so the polling adds a fixed 50 requests/s whatever the latency, and the resolution is
    20 ms × the probes in flight (fine when scores are fresh, coarser only when they are late)."""

    def __init__(
        self, http: Http, run_id: str, spacing: float = 0.5, interval: float = 0.02, timeout: float = 30.0
    ):
        self.http, self.run_id = http, run_id
        self.spacing, self.interval, self.timeout = spacing, interval, timeout
        self.count = 0

    def _start(self, email: str) -> Probe:
        path = f"/api/v1/leads/{quote(email, safe='@')}"
        before = self.http.get(path)
        external_id = f"{BENCH_ID_PREFIX}probe-{self.run_id}-{self.count}"
        body = json.dumps(
            {
                "external_id": external_id,
                "email": email,
                "kind": "demo_request",
                "occurred_at": iso(datetime.now(UTC) - timedelta(seconds=1)),
            }
        ).encode()
        self.count += 1
        sent = time.perf_counter()
        resp = self.http.post_json(API, body)
        if resp.status != 202:
            raise RuntimeError(f"probe POST answered {resp.status}: {resp.body[:200]!r}")
        return Probe(email, path, before.json(), sent, resp.elapsed, before.elapsed, external_id=external_id)

    def _poll(self, probe: Probe) -> bool:
        lead = self.http.get(probe.path).json()
        probe.polls += 1
        if _demo_points(lead) >= probe.want:
            probe.score_s = time.perf_counter() - probe.sent
            # Promotion is written in the rescore's transaction: the stage is visible with the score.
            if lead["stage"] == "mql" and probe.base["stage"] != "mql":
                probe.mql_s = probe.score_s
            return True
        return time.perf_counter() - probe.sent > self.timeout

    def window(self, emails: list[str], seconds: float) -> list[Probe]:
        """Start probes for `seconds` (one per `spacing`), then wait for the last ones (≤ timeout)."""
        done, flight = [], []
        end = time.perf_counter() + seconds
        next_start = time.perf_counter()
        turn = 0
        while True:
            now = time.perf_counter()
            if now < end and now >= next_start and emails:
                flight.append(self._start(emails.pop()))
                next_start += self.spacing
            elif flight:
                probe = flight[turn % len(flight)]
                if self._poll(probe):
                    flight.remove(probe)
                    done.append(probe)
                else:
                    turn += 1
            elif now >= end or not emails:
                return done
            time.sleep(self.interval)
