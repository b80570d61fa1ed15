{{/* Chart name, overridable with nameOverride. */}}
{{- define "akv-csi-provider.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: fullnameOverride, else the release name when it already contains the chart name,
else "<release>-<chart>"; 63 characters at most (DNS label).
*/}}
{{- define "akv-csi-provider.fullname" -}}
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

{{- define "akv-csi-provider.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the pods; never change them after a release exists. */}}
{{- define "akv-csi-provider.selectorLabels" -}}
app.kubernetes.io/name: {{ include "akv-csi-provider.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "akv-csi-provider.labels" -}}
helm.sh/chart: {{ include "akv-csi-provider.chart" . }}
{{ include "akv-csi-provider.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: provider
app.kubernetes.io/part-of: secrets-store-csi-driver
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "akv-csi-provider.serviceAccountName" -}}
{{- if .Values.rbac.install }}
{{- default (include "akv-csi-provider.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "akv-csi-provider.image" -}}
{{- $img := .Values.linux.image }}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion ($img.tag | toString)) }}
{{- end }}

{{/*
proxy.* as EnvVars (YAML list; empty when nothing is set): HTTPS_PROXY, HTTP_PROXY, NO_PROXY,
each only when its value is set. A noProxy list is joined with commas.
*/}}
{{- define "akv-csi-provider.proxyEnv" -}}
{{- $p := .Values.proxy | default dict }}
{{- $env := list }}
{{- with $p.httpsProxy }}
{{- $env = append $env (dict "name" "HTTPS_PROXY" "value" (toString .)) }}
{{- end }}
{{- with $p.httpProxy }}
{{- $env = append $env (dict "name" "HTTP_PROXY" "value" (toString .)) }}
{{- end }}
{{- $noProxy := $p.noProxy }}
{{- if kindIs "slice" $noProxy }}
{{- $noProxy = join "," $noProxy }}
{{- end }}
{{- with $noProxy }}
{{- $env = append $env (dict "name" "NO_PROXY" "value" (toString .)) }}
{{- end }}
{{- if $env }}
{{- toYaml $env }}
{{- end }}
{{- end }}

{{/* True when the ClusterRole for clientIdFromServiceAccount is rendered. */}}
{{- define "akv-csi-provider.serviceAccountReader" -}}
{{- if and .Values.linux.enabled .Values.rbac.install .Values.clientIdFromServiceAccount }}true{{ end }}
{{- end }}

{{/* metricsAddr as a bare port number: "8898", 8898 and ":8898" all give 8898. */}}
{{- define "akv-csi-provider.metricsPort" -}}
{{- .Values.metricsAddr | toString | trimPrefix ":" }}
{{- end }}

{{/*
Values of the upstream chart that have no equivalent here. Fail instead of silently ignoring
them, so a migrated values file does not quietly lose a setting.
*/}}
{{- define "akv-csi-provider.rejectUnsupported" -}}
{{- $driver := index .Values "secrets-store-csi-driver" | default dict }}
{{- if or (omit $driver "install") (index $driver "install") }}
{{- fail "values under \"secrets-store-csi-driver\" configure the driver chart, which this chart does not bundle: install the driver separately (see driver-values.yaml) and move these settings to its values file" }}
{{- end }}
{{- if and .Values.windows .Values.windows.enabled }}
{{- fail "windows.enabled: Windows nodes are not supported: only a Linux image is built and tested (linux/amd64, linux/arm64); remove windows.enabled or set it to false" }}
{{- end }}
{{- if .Values.enableArcExtension }}
{{- fail "enableArcExtension: the Azure Arc extension mode is not supported by this chart" }}
{{- end }}
{{- if .Values.rbac.pspEnabled }}
{{- fail "rbac.pspEnabled: PodSecurityPolicy was removed in Kubernetes 1.25; remove this value" }}
{{- end }}
{{- $proxyNames := list }}
{{- range (include "akv-csi-provider.proxyEnv" . | fromYamlArray) }}
{{- $proxyNames = append $proxyNames .name }}
{{- end }}
{{- range .Values.linux.env }}
{{- if has (upper (toString .name)) $proxyNames }}
{{- fail (printf "linux.env sets %s, which proxy.* already sets: set it in one place only (a proxy URL with credentials belongs in linux.env, from a Secret)" .name) }}
{{- end }}
{{- end }}
{{- if and .Values.linux.runAsNonRoot (eq (int .Values.linux.runAsUser) 0) }}
{{- fail "linux.runAsNonRoot=true needs a non-zero linux.runAsUser" }}
{{- end }}
{{- end }}
