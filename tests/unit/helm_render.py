"""Render the chart with Helm's own engine (helm-python-sdk): what the chart tests read."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

CHART_DIR = Path(__file__).resolve().parents[2] / "helm" / "video-categorizer"

# A GPU deployment scaled by KEDA with every optional part on (chart-testing reads it too).
GPU_KEDA: dict[str, Any] = yaml.safe_load((CHART_DIR / "ci" / "gpu-keda-values.yaml").read_text())


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    chart = helm.Chart.load(CHART_DIR)
    rendered = chart.render(values or {}, name="vc", namespace="streams", is_install=True)
    docs = []
    for path, text in rendered.items():
        if path.endswith(".yaml"):
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and not d["metadata"]["name"].endswith("-dashboard")]
    return doc


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (worker,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return worker


def env_names(docs: list[dict[str, Any]]) -> set[str]:
    return set(one(docs, "ConfigMap")["data"]) | {e["name"] for e in container(docs).get("env", [])}


def with_values(**changes: Any) -> dict[str, Any]:
    values = copy.deepcopy(GPU_KEDA)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target = values
        for key in parents:
            target = target.setdefault(key, {})
        target[leaf] = value
    return values
