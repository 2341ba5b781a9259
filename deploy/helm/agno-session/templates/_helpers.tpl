{{/* Names, labels and the pieces both Deployments share. */}}

{{- define "agno-session.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<chart>, or the release alone when it already contains the chart name. */}}
{{- define "agno-session.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A component's resource name: <fullname>-gateway, <fullname>-native. */}}
{{- define "agno-session.componentName" -}}
{{- printf "%s-%s" (include "agno-session.fullname" .root | trunc 55 | trimSuffix "-") .component }}
{{- end }}

{{- define "agno-session.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agno-session.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Chart-wide labels; with a component, its selector labels too. */}}
{{- define "agno-session.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: agentos-session
{{- if .root.Chart.AppVersion }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{- end }}
{{- if .component }}
{{ include "agno-session.selectorLabels" . }}
{{- else }}
app.kubernetes.io/name: {{ include "agno-session.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}
{{- end }}

{{- define "agno-session.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "agno-session.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "agno-session.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "agno-session.configMapName" -}}
{{- printf "%s-config" (include "agno-session.fullname" .) }}
{{- end }}

{{- define "agno-session.secretName" -}}
{{- default (printf "%s-secret" (include "agno-session.fullname" .)) .Values.secret.existingSecret }}
{{- end }}

{{/*
The credentials: variable name -> (values key, key in the Secret). The chart's own Secret holds
only the keys that have a value, so every reference points at a key that exists; an existing
Secret is referenced by the keys `secret.existingSecretKeys` names, each optional.
*/}}
{{- define "agno-session.secretVars" -}}
AGNO_PG_DSN: pgDsn
OS_SECURITY_KEY: securityKey
AGNO_GATEWAY_ADMIN_TOKEN: adminToken
AGNO_GATEWAY_STORE_DSN: storeDsn
{{- end }}

{{/* env entries for the credentials named in .vars (a list of variable names). */}}
{{- define "agno-session.secretEnv" -}}
{{- $root := .root }}
{{- $vars := include "agno-session.secretVars" $root | fromYaml }}
{{- range .vars }}
{{- $field := get $vars . }}
{{- if $root.Values.secret.existingSecret }}
{{- $key := get $root.Values.secret.existingSecretKeys $field }}
{{- if $key }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.secret.existingSecret }}
      key: {{ $key }}
      optional: true
{{- end }}
{{- else if get $root.Values.secret $field }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ include "agno-session.secretName" $root }}
      key: {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/* A map of name: value as env entries, in name order (values quoted: env values are strings). */}}
{{- define "agno-session.mapEnv" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* The variables both processes read, outside the credentials. */}}
{{- define "agno-session.commonEnv" -}}
- name: AGNO_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: AGNO_EMBEDDED_PG_DIR
  value: {{ .Values.embeddedPgDir | quote }}
{{- include "agno-session.mapEnv" .Values.env }}
{{- end }}

{{/* The writable places of a read-only root filesystem: /tmp and the embedded Postgres's parent. */}}
{{- define "agno-session.scratchVolumes" -}}
- name: tmp
  emptyDir: {}
- name: data
  emptyDir: {}
{{- end }}

{{- define "agno-session.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: {{ dir .Values.embeddedPgDir }}
{{- end }}

{{/* The gateway's native side: explicit URL, the native Service, or "" (in-process). */}}
{{- define "agno-session.nativeUrl" -}}
{{- if .Values.gateway.nativeUrl }}
{{- .Values.gateway.nativeUrl }}
{{- else if .Values.native.enabled }}
{{- printf "http://%s:%v" (include "agno-session.componentName" (dict "root" . "component" "native")) .Values.native.service.port }}
{{- end }}
{{- end }}

{{/* gateway.yaml as the gateway will read it, for the route groups. */}}
{{- define "agno-session.gatewayConfig" -}}
{{- $config := .Files.Get "files/gateway.yaml" | fromYaml }}
{{- if or (not $config) (hasKey $config "Error") }}
{{- fail "files/gateway.yaml is missing or not YAML: it must be a symlink to the repository's config/gateway.yaml" }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* PromQL label matchers selecting this release's gateway series. */}}
{{- define "agno-session.parityMatchers" -}}
{{- default (printf "namespace=%q" .Release.Namespace) .Values.parityAnalysis.matchers }}
{{- end }}

{{/*
The parity ratio of one route group as the gate counts it (shadow_proxy/gate.py, and the
ShadowParityBelowTarget alert): `expected` (a known difference) agrees, `error` is no comparison,
so (match + expected) / (match + expected + mismatch) over the window. Route
templates carry `{` `}`, so they are regex-quoted and passed as a PromQL raw (backtick) string.
Args: root, routes (list), window (a PromQL duration, or a template variable such as Flagger's).
*/}}
{{- define "agno-session.parityQuery" -}}
{{- $quoted := list }}
{{- range .routes }}
{{- $quoted = append $quoted (regexQuoteMeta .) }}
{{- end }}
{{- $sel := printf "route=~`%s`, %s" (join "|" $quoted) (include "agno-session.parityMatchers" .root) }}
{{- printf "sum(rate(shadow_comparisons_total{result=~\"match|expected\", %s}[%s])) / sum(rate(shadow_comparisons_total{result=~\"match|expected|mismatch\", %s}[%s]))" $sel .window $sel .window }}
{{- end }}
