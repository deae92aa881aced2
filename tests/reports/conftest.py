import pytest

from handoff.reports import views
from tests.reports import history


@pytest.fixture(autouse=True)
def _report_settings(settings, monkeypatch):
    settings.TIME_ZONE = "UTC"
    settings.ACCORD_SLA_HOURS = 24
    settings.ACCORD_ASSIGNMENT = "round_robin"
    monkeypatch.setattr(views, "now", lambda: history.NOW)


@pytest.fixture
def story(sdr, sdr2, manager):
    """The hand-made history (tests/reports/history.py); sdr gets H12, H2, H4, ... and sdr2 H1, H3, ..."""
    built = history.build()
    assert built["H12"].assignee == sdr and built["H1"].assignee == sdr2 and built["H11"].assignee == sdr2
    return built


@pytest.fixture
def mgr(client_for, manager):
    return client_for(manager)
