"""The alert rules beside the dashboard (deploy/observability/alerts.yml) load: they are
Prometheus's rule format, each names only metrics that are served, and Prometheus loads
them in the compose profile. With promtool installed (Debian's `prometheus`; CI installs
it) the file is also checked, and its alerts fire on made-up series, by Prometheus's own
tool (tests/support/alerts_test.yml)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .test_observability import COMPOSE, DEPLOY, PROMETHEUS, ROOT, _exported_metric_names

RULES_FILE = DEPLOY / "alerts.yml"
RULES = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
PROMTOOL = shutil.which("promtool")
# Served by RabbitMQ's exporter (prometheus.yml, job `rabbitmq`), not by the services.
RABBITMQ_METRICS = {"rabbitmq_detailed_queue_messages_ready"}
# What every alert says of itself.
SEVERITIES = {"info", "warning", "critical"}
PROMQL_WORDS = {
    "sum",
    "max",
    "by",
    "increase",
    "rate",
    "offset",
    "humanize",
}
_DURATION = re.compile(r"^\d+[smhd]$")


def _rules() -> list[dict[str, Any]]:
    return [rule for group in RULES["groups"] for rule in group["rules"]]


def _metrics(expr: str) -> set[str]:
    """The metric names in a PromQL expression: identifiers not followed by `(`, outside
    label matchers and strings, that are not keywords."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    without_matchers = re.sub(r"\{[^}]*\}", "", without_strings)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_matchers)
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", without_ranges))
    grouping = set(re.findall(r"\bby\s*\(([^)]*)\)", without_ranges))
    labels = {label.strip() for group in grouping for label in group.split(",")}
    return {
        name
        for name in names - PROMQL_WORDS - labels
        if not _DURATION.match(name) and not name.isdigit()
    }


def test_the_rules_are_prometheus_rule_groups() -> None:
    groups = RULES["groups"]
    assert groups and len({group["name"] for group in groups}) == len(groups)
    alerts = [rule["alert"] for rule in _rules()]
    assert len(set(alerts)) == len(alerts), "alert names are unique"
    for rule in _rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["expr"].strip(), rule["alert"]
        assert re.fullmatch(r"[A-Z][A-Za-z]+", rule["alert"]), rule["alert"]
        if "for" in rule:
            assert _DURATION.match(rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


def test_the_rules_cover_what_operators_must_hear_of() -> None:
    expressions = " ".join(rule["expr"] for rule in _rules())
    for metric in (
        "humantask_callback_attempts_total",  # failed callbacks
        "humantask_dead_letter_messages",  # dead letters
        "rabbitmq_detailed_queue_messages_ready",  # queue depth
        "humantask_gateway_shed_requests_total",  # shed requests
        "humantask_blocked_workers",  # blocked workers
    ):
        assert metric in expressions, metric


def test_every_metric_a_rule_names_is_served() -> None:
    served = _exported_metric_names() | RABBITMQ_METRICS
    named = {metric for rule in _rules() for metric in _metrics(rule["expr"])}
    assert named, "the rules name no metric"
    assert named <= served, sorted(named - served)
    # The RabbitMQ metric is one prometheus.yml asks RabbitMQ's exporter for.
    [rabbitmq] = [job for job in PROMETHEUS["scrape_configs"] if job["job_name"] == "rabbitmq"]
    assert rabbitmq["params"]["family"] == ["queue_coarse_metrics"]


def test_the_metric_names_are_read_from_promql() -> None:
    expr = 'sum by (queue) (increase(a_total{x="y{z}"}[5m])) - sum(b offset 1h) > 10'
    assert _metrics(expr) == {"a_total", "b"}


def test_prometheus_in_the_compose_profile_loads_the_rules() -> None:
    assert PROMETHEUS["rule_files"] == ["alerts.yml"]
    mounts = {
        str(volume).split(":")[1]: str(volume).split(":")[0]
        for volume in COMPOSE["services"]["prometheus"]["volumes"]
    }
    # Beside prometheus.yml in the container, so the relative rule_files path finds it.
    assert (ROOT / mounts["/etc/prometheus/alerts.yml"]).resolve() == RULES_FILE.resolve()
    assert Path(mounts["/etc/prometheus/prometheus.yml"]).name == "prometheus.yml"


@pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)"
)
def test_promtool_loads_the_rules_and_their_alerts_fire_when_they_should() -> None:
    assert PROMTOOL is not None
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES_FILE)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in checked.stdout
    tested = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts_test.yml"],
        cwd=ROOT / "tests" / "support",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
