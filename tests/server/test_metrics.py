"""``GET /metrics`` (spec http-api §11): the minimum series, route templates as labels, and the off switch."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Tenant, assert_error, drop_database, make_settings
from tests.servers import ServerProcess

Sample = tuple[str, frozenset[tuple[str, str]]]

SERIES = {
    "hellotext_http_requests": ("counter", {"method", "route", "status"}),
    "hellotext_http_request_duration_seconds": ("histogram", {"method", "route"}),
    "hellotext_events_stored": ("counter", {"via"}),
    "hellotext_identifications": ("counter", {"outcome"}),
    "hellotext_sessions_attached": ("counter", {"via"}),
    "hellotext_link_clicks": ("counter", {"kind"}),
}


def scrape(http: httpx.Client) -> tuple[str, dict[Sample, float]]:
    """The exposition text and its samples keyed by (name, labels)."""
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[Sample, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, samples


def value(samples: dict[Sample, float], name: str, **labels: str) -> float:
    """A sample's value, 0 when the series has no such child yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_expose_the_minimum_series(http: httpx.Client) -> None:
    """§11: every series the spec names is declared with its type."""
    http.get("/health")
    text, _ = scrape(http)
    families = {family.name: family for family in text_string_to_metric_families(text)}
    for name, (kind, labels) in SERIES.items():
        assert name in families, name
        assert families[name].type == kind, name
        for sample in families[name].samples:
            extra = {"le"} if kind == "histogram" else set()
            assert set(sample.labels) <= labels | extra, (name, sample.labels)


def test_requests_are_labelled_by_route_template_without_ids(
    http: httpx.Client, public: httpx.Client, private: httpx.Client, tenant: Tenant
) -> None:
    """§11: `route` is the template (``/v1/sessions/{id}``); no id, credential or personal data in labels."""
    _, before = scrape(http)
    session = f"metrics-{uuid.uuid4()}"
    secret_path = f"/v1/nope/{uuid.uuid4().hex}"
    public.get(f"/v1/public/businesses/{tenant.public_id}")
    private.get(f"/v1/sessions/{session}")
    public.post("/v1/public/acks", json={"session": session})
    http.get(secret_path)
    text, after = scrape(http)

    def grew(method: str, route: str, status: str) -> bool:
        key = dict(method=method, route=route, status=status)
        return value(after, "hellotext_http_requests_total", **key) > value(
            before, "hellotext_http_requests_total", **key
        )

    assert grew("GET", "/v1/public/businesses/{id}", "200")
    assert grew("GET", "/v1/sessions/{id}", "404")
    assert grew("POST", "/v1/public/acks", "200")
    assert value(
        after, "hellotext_http_request_duration_seconds_count", method="POST", route="/v1/public/acks"
    )
    for secret in (tenant.public_id, tenant.token, session, secret_path):
        assert secret not in text


def test_domain_counters_move(
    http: httpx.Client, public: httpx.Client, private: httpx.Client, tenant: Tenant
) -> None:
    """§11: events stored by via, identifications by outcome, attachments by via, link clicks by kind."""
    _, before = scrape(http)
    session = str(uuid.uuid4())
    event = {"action": "page.viewed", "url": "https://shop.example.test/", "session": session}
    assert public.post("/v1/track/events", json=event).status_code == 200
    identify = {"session": session, "user_id": f"user-{session}"}
    assert public.post("/v1/public/identifications", json=identify).status_code == 200
    assert public.post("/v1/public/identifications", json=identify).status_code == 200
    assert public.post("/v1/public/identifications", json={"user_id": "x-1"}).status_code == 200
    profile = private.post("/v1/profiles", json={}).json()["id"]
    other_session = str(uuid.uuid4())
    attach = private.patch(f"/v1/sessions/{other_session}", json={"profile": profile})
    assert attach.status_code == 200
    link = private.post("/v1/links", json={"destination": "https://shop.example.test/"}).json()
    assert http.get(f"/l/{link['code']}").status_code == 302
    assert http.head(f"/l/{link['code']}").status_code == 302
    _, after = scrape(http)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("hellotext_events_stored_total", via="track") >= 1
    assert delta("hellotext_events_stored_total", via="link") >= 1
    assert delta("hellotext_identifications_total", outcome="attached") >= 1
    assert delta("hellotext_identifications_total", outcome="already_attached") >= 1
    assert delta("hellotext_identifications_total", outcome="no_session") >= 1
    assert delta("hellotext_sessions_attached_total", via="api") >= 1
    assert delta("hellotext_sessions_attached_total", via="identify") >= 1
    assert delta("hellotext_link_clicks_total", kind="human") >= 1
    assert delta("hellotext_link_clicks_total", kind="bot") >= 1


@pytest.fixture
def metrics_off(tmp_path: Path) -> Iterator[str]:
    """A server started with ``HELLOTEXT_METRICS=false``."""
    settings = make_settings(tmp_path, "nometrics")
    proc = ServerProcess(settings, extra_env={"HELLOTEXT_METRICS": "false"}, log_path=tmp_path / "server.log")
    proc.start()
    try:
        yield proc.url
    finally:
        proc.stop()
        drop_database(settings)


def test_metrics_can_be_disabled(metrics_off: str) -> None:
    """§11: configuration can disable /metrics; it then answers 404 not_found in the envelope."""
    with httpx.Client(base_url=metrics_off, timeout=10) as client:
        assert client.get("/health").status_code == 200
        assert_error(client.get("/metrics"), 404, "not_found")
