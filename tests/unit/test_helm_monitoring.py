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
    for alert in rules.values():  # only the scrape-target rule may ask for absence, guarded (below)
        assert "vector(" not in alert["expr"], alert["alert"]
        assert "absent(" not in alert["expr"] or alert["alert"] == "VideocatTargetAbsent"
    later = rules_by_alert(render(with_values(metrics__prometheusRule__noPartitionsFor="20m")))
    assert later["VideocatNoPartitionsAssigned"]["for"] == "20m"
    # the worker-side reasons it holds nothing yet, by the log events the worker really writes
    description = rule["annotations"]["description"]
    assert "output_schemas_unresolved" in description and "transactions_not_initialized" in description


JOB = 'job="vc-video-categorizer-metrics"'
DEPLOYMENT = 'namespace="streams", deployment="vc-video-categorizer"'
ABSENT = f"absent(up{{{JOB}}})"
SPEC = f"kube_deployment_spec_replicas{{{DEPLOYMENT}}}"


def test_availability_alerts_do_not_need_a_running_worker(gpu_keda_docs: list[dict[str, Any]]) -> None:
    """A crash loop or a deployment stuck at zero leaves no videocat_* series: these read the scrape
    target and kube-state-metrics instead."""
    rules = rules_by_alert(gpu_keda_docs)
    expected = {
        "VideocatTargetDown": (f"up{{{JOB}}} == 0", "5m"),
        # minReplicas 0 here: no target is normal at zero replicas, so only while some are wanted
        "VideocatTargetAbsent": (f"{ABSENT} and on() ({SPEC} > 0)", "10m"),
        "VideocatRestarting": (
            'increase(kube_pod_container_status_restarts_total{namespace="streams", '
            'pod=~"vc-video-categorizer-.*"}[15m]) > 2', None),
        "VideocatReplicasUnavailable": (
            f"kube_deployment_status_replicas_available{{{DEPLOYMENT}}} < {SPEC}", "15m"),
    }
    for alert, (expr, duration) in expected.items():
        assert (rules[alert]["expr"], rules[alert].get("for")) == (expr, duration), alert
        assert rules[alert]["labels"]["severity"] == "critical"


@pytest.mark.parametrize(
    "changes, guarded",
    [
        ({"autoscaling__minReplicas": 1}, False),  # KEDA, never below one replica
        ({"autoscaling__keda__enabled": False, "autoscaling__minReplicas": 2}, False),  # HPA
        ({"autoscaling__enabled": False, "replicaCount": 2}, False),
        ({"autoscaling__enabled": False, "replicaCount": 0}, True),
    ],
)
def test_target_absent_is_unconditional_only_where_replicas_are_always_expected(
    changes: dict[str, Any], guarded: bool
) -> None:
    expr = rules_by_alert(render(with_values(**changes)))["VideocatTargetAbsent"]["expr"]
    assert expr.startswith(ABSENT) and (expr != ABSENT) is guarded


def test_flow_control_and_dead_letter_alerts_need_more_than_normal_flow(gpu_keda_docs: list[dict[str, Any]]) -> None:
    rules = rules_by_alert(gpu_keda_docs)
    # pausing under backlog is normal: only a paused replica that produces nothing pages
    paused = rules["VideocatPausedLong"]["expr"]
    assert paused.startswith(f"max by (instance) (videocat_consumer_paused{{{JOB}}}) == 1 and ")
    assert paused.endswith(f"sum by (instance) (rate(videocat_events_produced_total{{{JOB}}}[10m])) == 0")
    # a ratio alone pages on 1 bad event in 50 on a quiet topic
    dead = rules["VideocatDeadLetterRateHigh"]["expr"]
    assert dead.endswith(f" > 0.01 and sum(increase(videocat_events_dead_lettered_total{{{JOB}}}[15m])) > 20")


def test_every_alert_has_a_description_and_a_runbook(gpu_keda_docs: list[dict[str, Any]]) -> None:
    operations = (CHART_DIR.parents[1] / "docs" / "operations.md").read_text()
    worker_sources = "".join(p.read_text() for p in (CHART_DIR.parents[1] / "worker").rglob("*.py"))
    for alert, rule in rules_by_alert(gpu_keda_docs).items():
        annotations = rule["annotations"]
        assert annotations["runbook_url"] == f"docs/operations.md#{alert.lower()}"
        assert f"\n### {alert}\n" in operations, alert  # the heading that anchor names
        assert len(annotations["description"]) > 40, alert
        for event in re.findall(r"\blog (\w+)", annotations["description"]):
            assert f'"{event}"' in worker_sources, (alert, event)  # a log event the worker writes
    elsewhere = rules_by_alert(render(with_values(metrics__prometheusRule__runbookBaseUrl="https://x/ops.md")))
    assert elsewhere["VideocatStalled"]["annotations"]["runbook_url"] == "https://x/ops.md#videocatstalled"


def test_every_alert_is_documented(gpu_keda_docs: list[dict[str, Any]]) -> None:
    operations = (CHART_DIR.parents[1] / "docs" / "operations.md").read_text()
    for alert in rules_by_alert(gpu_keda_docs):
        assert f"| `{alert}` |" in operations, alert
    for series in exported_series():
        base = re.sub(r"_(total|bucket|sum|count|info)$", "", series)
        assert f"`{base}" in operations, series
