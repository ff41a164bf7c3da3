"""The chart's monitoring: every series the dashboard and alerts use is exported, the no-partitions alert,
and every alert and series documented in docs/operations.md."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.unit.helm_render import CHART_DIR, GPU_KEDA, one, render, with_values
from worker.health import Health
from worker.metrics import Metrics


@pytest.fixture(scope="module")
def gpu_keda_docs() -> list[dict[str, Any]]:
    return render(GPU_KEDA)


def exported_series() -> set[str]:
    suffixes = {
        "counter": ["_total"],
        "histogram": ["_bucket", "_sum", "_count"],
        "info": ["_info"],
        "gauge": [""],
    }
    registry = Metrics().registry
    Health().export_to(registry)  # what worker.health.serve adds: videocat_assigned_partitions
    return {m.name + s for m in registry.collect() for s in suffixes[m.type]}


def test_dashboard_and_alerts_use_exported_metrics(gpu_keda_docs: list[dict[str, Any]]) -> None:
    dashboard = json.loads((CHART_DIR / "dashboards" / "worker.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    rules = one(gpu_keda_docs, "PrometheusRule")["spec"]["groups"][0]["rules"]
    exprs += [r["expr"] for r in rules]
    used = {name for expr in exprs for name in re.findall(r"\bvideocat_[a-z_]+", expr)}
    assert used and used <= exported_series(), used - exported_series()
    shipped = [d for d in gpu_keda_docs if d["metadata"]["name"].endswith("-dashboard")]
    assert json.loads(shipped[0]["data"]["video-categorizer.json"]) == dashboard


def rules_by_alert(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for r in one(docs, "PrometheusRule")["spec"]["groups"][0]["rules"]}


def test_no_partitions_alert_covers_a_group_that_holds_nothing(gpu_keda_docs: list[dict[str, Any]]) -> None:
    """A stuck group, unreachable brokers or an auth failure leave no partition assigned, so no lag
    series: VideocatStalled (lag-based) cannot fire then. The gauge every running replica reports,
    0 included, can. Scaled to zero (KEDA minReplicas 0, as here) no replica reports, the sum is
    empty and the alert stays quiet: so no absent(), and no `or vector(0)`, which would page then."""
    assert one(gpu_keda_docs, "ScaledObject")["spec"]["minReplicaCount"] == 0
    rules = rules_by_alert(gpu_keda_docs)
    rule = rules["VideocatNoPartitionsAssigned"]
    assert rule["expr"] == 'sum(videocat_assigned_partitions{job="vc-video-categorizer-metrics"}) == 0'
    assert rule["for"] == "10m" and rule["labels"]["severity"] == "critical"
    assert "videocat_consumer_lag" in rules["VideocatStalled"]["expr"]  # held, lagging, not consuming
    for alert in rules.values():
        assert "absent(" not in alert["expr"] and "vector(" not in alert["expr"], alert["alert"]
    later = rules_by_alert(render(with_values(metrics__prometheusRule__noPartitionsFor="20m")))
    assert later["VideocatNoPartitionsAssigned"]["for"] == "20m"


def test_every_alert_is_documented(gpu_keda_docs: list[dict[str, Any]]) -> None:
    operations = (CHART_DIR.parents[1] / "docs" / "operations.md").read_text()
    for alert in rules_by_alert(gpu_keda_docs):
        assert f"| `{alert}` |" in operations, alert
    for series in exported_series():
        base = re.sub(r"_(total|bucket|sum|count|info)$", "", series)
        assert f"`{base}" in operations, series
