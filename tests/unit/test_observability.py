"""Static checks of the `observability` compose profile (no Docker engine needed):
Prometheus scrapes every service where it serves /metrics, the dashboard asks only for
metrics the code exports, the override sends traces to the profile's Jaeger."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

# Every module that defines metrics, so that the registry knows them all.
import humantask_gateway.main  # noqa: F401
import humantask_notifier.main  # noqa: F401
import humantask_taskstore.main  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "observability"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
OVERRIDE = yaml.safe_load((ROOT / "docker-compose.observability.yml").read_text(encoding="utf-8"))
PROMETHEUS = yaml.safe_load((DEPLOY / "prometheus.yml").read_text(encoding="utf-8"))
DASHBOARD = json.loads(
    (DEPLOY / "grafana" / "dashboards" / "humantask.json").read_text(encoding="utf-8")
)
DATASOURCES = yaml.safe_load(
    (DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yml").read_text(
        encoding="utf-8"
    )
)

APP_SERVICES = ("gateway", "taskstore", "notifier")
PROFILE_SERVICES = ("prometheus", "grafana", "jaeger")


def _environment(service: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (service.get("environment") or {}).items()}


def _exported_metric_names() -> set[str]:
    """What the code's metrics are called in /metrics, suffixes included."""
    suffixes = {
        "counter": ["_total"],
        "histogram": ["_bucket", "_count", "_sum"],
        "gauge": [""],
        "summary": ["_count", "_sum"],
    }
    names: set[str] = set()
    for family in REGISTRY.collect():
        names |= {family.name + suffix for suffix in suffixes.get(family.type, [""])}
    return names


def _expressions() -> list[str]:
    return [target["expr"] for panel in DASHBOARD["panels"] for target in panel.get("targets", [])]


def test_the_profile_services_start_only_with_the_profile_and_publish_locally() -> None:
    for name in PROFILE_SERVICES:
        service = COMPOSE["services"][name]
        assert service.get("profiles") == ["observability"], name
        assert all(str(port).startswith("127.0.0.1:") for port in service.get("ports") or []), name
        for volume in service.get("volumes") or []:
            source = str(volume).split(":", 1)[0]
            assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


def test_prometheus_scrapes_every_service_on_its_health_port() -> None:
    [job] = [job for job in PROMETHEUS["scrape_configs"] if job["job_name"] == "humantask"]
    [lookup] = job["dns_sd_configs"]
    assert sorted(lookup["names"]) == sorted(APP_SERVICES)
    for name in APP_SERVICES:
        assert _environment(COMPOSE["services"][name])["HEALTH_PORT"] == str(lookup["port"]), name
    assert job.get("metrics_path", "/metrics") == "/metrics"
    # RabbitMQ's own exporter, per queue.
    [rabbitmq] = [job for job in PROMETHEUS["scrape_configs"] if job["job_name"] == "rabbitmq"]
    assert rabbitmq["static_configs"][0]["targets"] == ["rabbitmq:15692"]


def test_the_dashboard_asks_for_metrics_that_exist() -> None:
    exported = _exported_metric_names()
    used = {name for expr in _expressions() for name in re.findall(r"\bhumantask_\w+", expr)}
    assert used, "the dashboard queries no humantask metric"
    assert used <= exported, sorted(used - exported)
    # The panels the README promises.
    titles = {panel["title"] for panel in DASHBOARD["panels"]}
    assert {
        "Request rate by route",
        "Latency p95 by route",
        "RabbitMQ queue depth",
        "Oldest pending task",
        "Callback attempts by outcome and reason",
        # docs/reference/contract.md §10's operators' view
        "Tasks waiting for more answers",
        "Answers per completed task",
        "Gold answers scored and workers blocked",
        "Blocked workers",
    } <= titles


def test_the_dashboard_uses_the_provisioned_data_source() -> None:
    uids = {source["uid"] for source in DATASOURCES["datasources"]}
    assert {"prometheus", "jaeger"} <= uids
    for panel in DASHBOARD["panels"]:
        if "datasource" in panel:
            assert panel["datasource"]["uid"] in uids, panel["title"]
    prometheus = next(s for s in DATASOURCES["datasources"] if s["uid"] == "prometheus")
    assert prometheus["url"] == "http://prometheus:9090"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_the_override_sends_traces_to_the_profiles_jaeger(name: str) -> None:
    env = _environment(OVERRIDE["services"][name])
    assert env == {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318",
    }
    assert set(OVERRIDE["services"]) == set(APP_SERVICES), "the override only adds environment"
    assert _environment(COMPOSE["services"]["jaeger"])["COLLECTOR_OTLP_ENABLED"] == "true"
