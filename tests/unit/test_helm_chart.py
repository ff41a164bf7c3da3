"""Render the chart with Helm's own engine (helm-python-sdk) and validate what comes out.

Built-in kinds are checked against the Kubernetes JSON schemas (kubernetes-validate,
strict: unknown fields fail); the CRD kinds (KEDA ScaledObject, Prometheus Operator
ServiceMonitor and PrometheusRule) against schemas reduced from their CRDs
(helm_crd_schemas.yaml).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr

from tests.unit.helm_render import CHART_DIR, GPU_KEDA, container, env_names, one, render, with_values
from worker.consume import SETTLE_BEFORE_LEAVE_S
from worker.settings import Settings

K8S_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())
SECRET_KEY = re.compile(r"password|secret|credential|basicAuth|apiKey", re.IGNORECASE)  # values.yaml keys
SECRET_SETTINGS = {name.upper() for name, f in Settings.model_fields.items() if f.annotation is SecretStr}
CRD_SCHEMAS: dict[str, Any] = yaml.safe_load((Path(__file__).parent / "helm_crd_schemas.yaml").read_text())


@pytest.fixture(scope="module")
def default_docs() -> list[dict[str, Any]]:
    return render()


@pytest.fixture(scope="module")
def gpu_keda_docs() -> list[dict[str, Any]]:
    return render(GPU_KEDA)


def test_rendered_kinds(default_docs: list[dict[str, Any]], gpu_keda_docs: list[dict[str, Any]]) -> None:
    base = {"ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"}
    assert sorted(d["kind"] for d in default_docs) == sorted(base | {"HorizontalPodAutoscaler"})
    assert sorted(d["kind"] for d in gpu_keda_docs) == sorted(
        [*base, "ConfigMap", "ScaledObject", "ServiceMonitor", "PrometheusRule"]
    )


@pytest.mark.parametrize("values", [None, GPU_KEDA], ids=["default", "gpu-keda"])
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_validates(values: dict[str, Any] | None, version: str) -> None:
    for doc in render(values):
        if doc["kind"] in CRD_SCHEMAS:
            jsonschema.validate(doc, CRD_SCHEMAS[doc["kind"]])
        else:
            kubernetes_validate.validate(doc, version, strict=True)


def test_helm_lint_is_clean() -> None:
    for values in (None, GPU_KEDA):
        report = helm.lint(CHART_DIR, values, strict=True)
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert not report["errors"] and not problems, problems


@pytest.mark.parametrize("values", [None, GPU_KEDA], ids=["default", "gpu-keda"])
def test_probes_and_security(values: dict[str, Any] | None) -> None:
    docs = render(values)
    worker = container(docs)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    (port,) = worker["ports"]
    assert str(port["containerPort"]) == one(docs, "ConfigMap")["data"]["WORKER_METRICS_PORT"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert worker["securityContext"]["readOnlyRootFilesystem"] is True
    assert worker["securityContext"]["allowPrivilegeEscalation"] is False
    assert worker["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"name": "tmp", "mountPath": "/tmp"} in worker["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}} in pod["volumes"]
    assert pod["automountServiceAccountToken"] is False


def test_grace_period_covers_a_stop_during_a_rebalance(default_docs: list[dict[str, Any]]) -> None:
    """SIGTERM mid-rebalance: the worker drains, then serves the group until its join settles
    (`SETTLE_BEFORE_LEAVE_S`) before leaving; the pod must not be SIGKILLed before it leaves."""
    pod = one(default_docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= SETTLE_BEFORE_LEAVE_S + 15


def test_default_is_cpu_with_an_hpa(default_docs: list[dict[str, Any]]) -> None:
    worker = container(default_docs)
    assert "nvidia.com/gpu" not in json.dumps(worker["resources"])
    assert worker["image"].endswith("-cpu")
    hpa = one(default_docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["scaleTargetRef"]["name"] == one(default_docs, "Deployment")["metadata"]["name"]
    assert "replicas" not in one(default_docs, "Deployment")["spec"]  # the autoscaler owns it


def test_gpu_request_and_scheduling(gpu_keda_docs: list[dict[str, Any]]) -> None:
    worker = container(gpu_keda_docs)
    pod = one(gpu_keda_docs, "Deployment")["spec"]["template"]["spec"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert worker["resources"]["limits"]["memory"] == "4Gi"
    assert worker["image"].endswith("-gpu")
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["runtimeClassName"] == "nvidia"


def test_scaled_object_scales_the_deployment_on_the_groups_lag(gpu_keda_docs: list[dict[str, Any]]) -> None:
    scaled = one(gpu_keda_docs, "ScaledObject")["spec"]
    config = one(gpu_keda_docs, "ConfigMap")["data"]
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["topic"] == config["WORKER_INPUT_TOPIC"] == "uploads-v2"
    assert trigger["metadata"]["consumerGroup"] == config["WORKER_GROUP_ID"] == "videocat-gpu"
    assert trigger["metadata"]["bootstrapServers"] == config["KAFKA_BOOTSTRAP_SERVERS"]
    assert trigger["metadata"]["lagThreshold"] == "500"
    # any lag wakes the group from zero; lag counted from where the worker starts (auto.offset.reset)
    assert trigger["metadata"]["activationLagThreshold"] == "0"
    assert trigger["metadata"]["offsetResetPolicy"] == "earliest"
    # a lag KEDA cannot read must not leave the deployment at zero
    assert scaled["fallback"] == {"failureThreshold": 3, "replicas": 1}
    assert trigger["authenticationRef"] == {"name": "kafka"}
    assert scaled["scaleTargetRef"]["name"] == one(gpu_keda_docs, "Deployment")["metadata"]["name"]
    assert scaled["minReplicaCount"] == 0
    assert scaled["maxReplicaCount"] <= GPU_KEDA["partitions"]
    assert not [d for d in gpu_keda_docs if d["kind"] == "HorizontalPodAutoscaler"]


@pytest.mark.parametrize(
    "changes",
    [
        {"autoscaling__maxReplicas": 9},  # KEDA
        {
            "autoscaling__maxReplicas": 9,
            "autoscaling__keda__enabled": False,
            "autoscaling__minReplicas": 1,
        },  # HPA
        {"autoscaling__enabled": False, "replicaCount": 9},  # fixed
    ],
)
def test_more_replicas_than_partitions_fails_to_render(changes: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmError, match="must not exceed the input topic's partitions"):
        render(with_values(**changes))


def test_keda_fallback_holds_at_least_min_replicas() -> None:
    scaled = one(render(with_values(autoscaling__minReplicas=3)), "ScaledObject")["spec"]
    assert scaled["fallback"] == {"failureThreshold": 3, "replicas": 3}
    # above zero replicas the activation threshold does nothing: an old values file's may stay
    docs = render(with_values(autoscaling__minReplicas=1, autoscaling__keda__activationLagThreshold=10))
    assert one(docs, "ScaledObject")["spec"]["triggers"][0]["metadata"]["activationLagThreshold"] == "0"


@pytest.mark.parametrize(
    "changes, error",
    [
        ({"autoscaling__keda__authenticationRef": ""}, "authenticationRef must name a TriggerAuthentication"),
        ({"autoscaling__keda__activationLagThreshold": 5}, "activationLagThreshold is fixed at 0"),
        ({"autoscaling__keda__offsetResetPolicy": "latest"}, "offsetResetPolicy is fixed at earliest"),
        ({"worker__metricsPort": 0}, "metricsPort must not be 0"),
        ({"metrics__serviceMonitor__enabled": False}, 'select job="vc-video-categorizer-metrics"'),
    ],
)
def test_values_that_break_scaling_probes_or_alerts_fail_to_render(changes: dict[str, Any], error: str) -> None:
    with pytest.raises(helm.HelmError, match=re.escape(error)):
        render(with_values(**changes))


def test_values_next_to_the_refused_ones_render() -> None:
    render(with_values(kafka__securityProtocol="PLAINTEXT", autoscaling__keda__authenticationRef=""))
    render(with_values(autoscaling__keda__offsetResetPolicy="earliest", autoscaling__keda__activationLagThreshold=0))
    render(with_values(autoscaling__keda__enabled=False, autoscaling__minReplicas=1,
                       autoscaling__keda__authenticationRef=""))  # only KEDA reads the lag itself
    docs = render(with_values(metrics__serviceMonitor__enabled=False, metrics__prometheusRule__job="videocat"))
    assert "ServiceMonitor" not in {d["kind"] for d in docs}
    exprs = [r["expr"] for r in one(docs, "PrometheusRule")["spec"]["groups"][0]["rules"]]
    assert 'up{job="videocat"} == 0' in exprs and not [e for e in exprs if "-metrics" in e]


def test_fixed_replicas_without_autoscaling() -> None:
    docs = render(with_values(autoscaling__enabled=False, replicaCount=3))
    assert one(docs, "Deployment")["spec"]["replicas"] == 3
    assert not [d for d in docs if d["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")]


def is_secret_reference(node: Any) -> bool:
    """`{name, key}` of an existing Secret, or a list of `{name}` (imagePullSecrets)."""
    if isinstance(node, dict):
        return set(node) == {"name", "key"}
    return isinstance(node, list) and all(isinstance(i, dict) and set(i) == {"name"} for i in node)


def test_values_hold_secret_references_only() -> None:
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())

    checked: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                if SECRET_KEY.search(key):
                    assert is_secret_reference(child), f"{path}.{key} must only name an existing Secret"
                    checked.append(f"{path}.{key}")
                walk(child, f"{path}.{key}")

    walk(values, "values")
    assert len(checked) >= 4  # kafka/redis passwords, registry auth, image pull secrets


@pytest.mark.parametrize("values", [None, GPU_KEDA], ids=["default", "gpu-keda"])
def test_secrets_come_from_secret_refs(values: dict[str, Any] | None) -> None:
    docs = render(values)
    assert "Secret" not in {d["kind"] for d in docs}
    assert {"KAFKA_SASL_PASSWORD", "SCHEMA_REGISTRY_BASIC_AUTH", "REDIS_PASSWORD"} == SECRET_SETTINGS
    assert not SECRET_SETTINGS & set(one(docs, "ConfigMap")["data"])
    for entry in container(docs).get("env", []):
        if entry["name"] in SECRET_SETTINGS:
            assert set(entry) == {"name", "valueFrom"} and "secretKeyRef" in entry["valueFrom"]


def test_secret_env_names_the_existing_secrets(gpu_keda_docs: list[dict[str, Any]]) -> None:
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container(gpu_keda_docs)["env"]
        if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
    }
    assert refs == {
        "KAFKA_SASL_PASSWORD": {"name": "kafka-credentials", "key": "password"},
        "SCHEMA_REGISTRY_BASIC_AUTH": {"name": "registry-credentials", "key": "basic-auth"},
        "REDIS_PASSWORD": {"name": "redis-credentials", "key": "password"},
    }


@pytest.mark.parametrize("key", ["redis__url", "schemaRegistry__url"])
def test_credentials_in_urls_are_refused(key: str) -> None:
    with pytest.raises(helm.HelmError, match="must not carry credentials"):
        render(with_values(**{key: "rediss://user:hunter2@host:6380/0"}))


def test_every_setting_is_configurable_and_no_unknown_env() -> None:
    docs = render(with_values(worker__maxTokens=256, worker__textMaxChars=1024))  # empty by default
    settings = {name.upper() for name in Settings.model_fields}
    names = env_names(docs)
    assert settings - names == set(), "settings the chart cannot set"
    assert {n for n in one(docs, "ConfigMap")["data"]} <= settings
    assert one(docs, "ConfigMap")["data"]["WORKER_MAX_TOKENS"] == "256"


@pytest.mark.parametrize("values", [None, GPU_KEDA], ids=["default", "gpu-keda"])
def test_the_head_s_own_text_budgets_are_served_unless_overridden(values: dict[str, Any] | None) -> None:
    # Setting them by default overrode the starter's 1024 characters / 256 tokens with 512 / 128.
    assert not {"WORKER_MAX_TOKENS", "WORKER_TEXT_MAX_CHARS"} & env_names(render(values))


def test_exactly_once_takes_the_transactional_id_from_the_pod_name(
    default_docs: list[dict[str, Any]], gpu_keda_docs: list[dict[str, Any]]
) -> None:
    (entry,) = [e for e in container(gpu_keda_docs)["env"] if e["name"] == "WORKER_TRANSACTIONAL_ID"]
    assert entry["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "WORKER_TRANSACTIONAL_ID" not in env_names(default_docs)


# Every integer setting the ConfigMap carries, at 1e6 or more: values files hold numbers as float64,
# which `quote` alone prints as "1.2e+06" (pydantic refuses it and the pod crash-loops).
def test_config_change_rolls_the_pods(default_docs: list[dict[str, Any]]) -> None:
    def checksum(docs: list[dict[str, Any]]) -> str:
        return one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum(default_docs) != checksum(render({"worker": {"batchMaxSize": 64}}))
