{{/* Names and labels shared by every template. */}}

{{- define "videocat.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "videocat.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "videocat.selectorLabels" -}}
app.kubernetes.io/name: {{ include "videocat.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "videocat.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "videocat.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: worker
{{- end -}}

{{- define "videocat.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "videocat.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "videocat.image" -}}
{{- $variant := ternary "gpu" "cpu" .Values.gpu.enabled -}}
{{- $tag := default (printf "%s-%s" .Chart.AppVersion $variant) .Values.image.tag -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}

{{/*
An integer value as plain decimal digits: (list "dotted.name" value). Values files hold every
number as a float64, which `quote` and `toString` print in exponent form from 1e6 up
("1.2e+06"): an integer setting must not see that (pydantic refuses it, the pod crash-loops).
Whole floats, int64s (--set) and digit strings pass; anything else fails the render, naming
the value, rather than being truncated or zeroed by `int64`.
*/}}
{{- define "videocat.int" -}}
{{- $name := index . 0 -}}
{{- $value := index . 1 -}}
{{- $text := toString $value -}}
{{- if kindIs "float64" $value -}}
{{- if ne $value (float64 (int64 $value)) -}}
{{- fail (printf "%s must be a whole number, not %v" $name $value) -}}
{{- end -}}
{{- $text = toString (int64 $value) -}}
{{- end -}}
{{- if not (regexMatch "^-?[0-9]+$" $text) -}}
{{- fail (printf "%s must be a whole number, not %q" $name $text) -}}
{{- end -}}
{{- $text -}}
{{- end -}}

{{/* The most replicas any mode can run: checked against the partition count. */}}
{{- define "videocat.maxReplicas" -}}
{{- if .Values.autoscaling.enabled -}}
{{- .Values.autoscaling.maxReplicas -}}
{{- else -}}
{{- .Values.replicaCount -}}
{{- end -}}
{{- end -}}

{{- define "videocat.namespace" -}}
{{- .Release.Namespace -}}
{{- end -}}

{{/* The job label the alerts select: the metrics Service's name, which the chart's ServiceMonitor
gives its targets, unless metrics.prometheusRule.job names another scrape job. */}}
{{- define "videocat.metricsJob" -}}
{{- default (printf "%s-metrics" (include "videocat.fullname" .)) .Values.metrics.prometheusRule.job -}}
{{- end -}}

{{/* "true" when the deployment may run no replica: KEDA's minReplicas 0, or replicaCount 0. */}}
{{- define "videocat.mayRunZero" -}}
{{- if .Values.autoscaling.enabled -}}
{{- if eq (int .Values.autoscaling.minReplicas) 0 }}true{{ end -}}
{{- else if eq (int .Values.replicaCount) 0 -}}
true
{{- end -}}
{{- end -}}

{{/* Fail early on values that would break the deployment or leak secrets. */}}
{{- define "videocat.validate" -}}
{{- $max := include "videocat.maxReplicas" . | int -}}
{{- if gt $max (int .Values.partitions) -}}
{{- fail (printf "replicas (%d) must not exceed the input topic's partitions (%d): extra consumers sit idle" $max (int .Values.partitions)) -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (not .Values.autoscaling.keda.enabled) (lt (int .Values.autoscaling.minReplicas) 1) -}}
{{- fail "autoscaling.minReplicas 0 (scale to zero) needs autoscaling.keda.enabled" -}}
{{- end -}}
{{- if regexMatch "://[^/]*@" .Values.redis.url -}}
{{- fail "redis.url must not carry credentials: use redis.username and redis.passwordSecret" -}}
{{- end -}}
{{- if regexMatch "://[^/]*@" .Values.schemaRegistry.url -}}
{{- fail "schemaRegistry.url must not carry credentials: use schemaRegistry.basicAuthSecret" -}}
{{- end -}}
{{- if not (has .Values.worker.delivery (list "at-least-once" "exactly-once")) -}}
{{- fail "worker.delivery must be at-least-once or exactly-once" -}}
{{- end -}}
{{- if eq (include "videocat.int" (list "worker.metricsPort" .Values.worker.metricsPort)) "0" -}}
{{- fail "worker.metricsPort must not be 0: it turns off the worker's HTTP server, so the /healthz and /readyz probes could never pass (and nothing is scraped)" -}}
{{- end -}}
{{- $keda := .Values.autoscaling.keda -}}
{{- if and .Values.autoscaling.enabled $keda.enabled -}}
{{- if and (ne (upper .Values.kafka.securityProtocol) "PLAINTEXT") (not $keda.authenticationRef) -}}
{{- fail (printf "autoscaling.keda.authenticationRef must name a TriggerAuthentication when kafka.securityProtocol is %s: without it KEDA cannot read the group's lag" .Values.kafka.securityProtocol) -}}
{{- end -}}
{{- with $keda.offsetResetPolicy -}}
{{- if ne (toString .) "earliest" -}}
{{- fail "autoscaling.keda.offsetResetPolicy is fixed at earliest: the worker reads a partition without a committed offset from its earliest offset (worker/consume.py), so KEDA must count its lag from there" -}}
{{- end -}}
{{- end -}}
{{- with $keda.activationLagThreshold -}}
{{- if and (eq (int $.Values.autoscaling.minReplicas) 0) (ne (include "videocat.int" (list "autoscaling.keda.activationLagThreshold" .)) "0") -}}
{{- fail "autoscaling.keda.activationLagThreshold is fixed at 0: with minReplicas 0, uploads up to that lag would wait unprocessed, for as long as no more arrive" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $rule := .Values.metrics.prometheusRule -}}
{{- if and $rule.enabled (not .Values.metrics.serviceMonitor.enabled) (not $rule.job) -}}
{{- fail (printf "metrics.prometheusRule needs metrics.serviceMonitor.enabled: its alerts select job=%q, which only the chart's ServiceMonitor produces; or set metrics.prometheusRule.job to the scrape job that collects the worker's metrics" (include "videocat.metricsJob" .)) -}}
{{- end -}}
{{- end -}}

{{/* Env entries not in the ConfigMap: secret references and the pod name. */}}
{{- define "videocat.env" -}}
{{- if eq $.Values.worker.delivery "exactly-once" }}
# One transactional id per pod: its name. It survives a container restart in the pod, not the
# pod's replacement: a pod killed mid-transaction leaves that transaction open until
# transaction.timeout.ms (docs/operations.md, "Exactly-once").
- name: WORKER_TRANSACTIONAL_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}
{{- with .Values.kafka.passwordSecret.name }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ . | quote }}, key: {{ $.Values.kafka.passwordSecret.key | quote }}}
{{- end }}
{{- with .Values.schemaRegistry.basicAuthSecret.name }}
- name: SCHEMA_REGISTRY_BASIC_AUTH
  valueFrom:
    secretKeyRef: {name: {{ . | quote }}, key: {{ $.Values.schemaRegistry.basicAuthSecret.key | quote }}}
{{- end }}
{{- with .Values.redis.passwordSecret.name }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ . | quote }}, key: {{ $.Values.redis.passwordSecret.key | quote }}}
{{- end }}
{{- with $.Values.worker.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}
