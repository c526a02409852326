{{/* The chart's name. */}}
{{- define "deid-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The full name of the release's objects. At most 52 characters: the StatefulSet controller labels
each pod with "<name>-<revision hash>", which must fit in 63.
*/}}
{{- define "deid-gateway.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "deid-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "deid-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "deid-gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "deid-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "deid-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "deid-gateway.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "deid-gateway.secretName" -}}
{{- default (include "deid-gateway.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "deid-gateway.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The gateway's config.yaml (src/config/schema.ts): the `gateway` values with the settings the chart
owns laid over them: listen on all interfaces on the container ports, the paths on the data
volume, the mounted secret files and TLS files. The ConfigMap holds it and the pod template
carries its checksum, so a change rolls the replicas.
*/}}
{{- define "deid-gateway.config" -}}
{{- $tls := dict "enabled" false -}}
{{- if .Values.dimseTls.enabled -}}
{{- $tls = dict "enabled" true "certFile" "/etc/deid-gateway/tls/tls.crt" "keyFile" "/etc/deid-gateway/tls/tls.key" "requireClientCert" .Values.dimseTls.requireClientCert -}}
{{- if .Values.dimseTls.requireClientCert -}}
{{- $_ := set $tls "caFile" "/etc/deid-gateway/tls/ca.crt" -}}
{{- end -}}
{{- end -}}
{{- $managed := dict
      "dimse" (dict "host" "0.0.0.0" "port" .Values.containerPorts.dimse "tls" $tls)
      "spool" (dict "dir" "/var/lib/deid-gateway/spool")
      "exports" (dict "dir" "/var/lib/deid-gateway/spool/exports")
      "audit" (dict "file" "/var/log/deid-gateway/audit.jsonl")
      "api" (dict "enabled" true "host" "0.0.0.0" "port" .Values.containerPorts.http "tokenFile" "/etc/deid-gateway/secrets/api-tokens")
      "pseudonyms" (dict "secretFile" "/etc/deid-gateway/secrets/pseudonymization-secret") -}}
{{- toYaml (mustMergeOverwrite (deepCopy .Values.gateway) $managed) -}}
{{- end -}}

{{/* The data of the Secret the chart creates (when there is no existingSecret). */}}
{{- define "deid-gateway.secretData" -}}
{{- $secret := required "secrets.pseudonymizationSecret is required unless secrets.existingSecret is set (the same secret in every replica and every release, e.g. $(openssl rand -hex 32))" .Values.secrets.pseudonymizationSecret -}}
{{- if lt (len $secret) 16 -}}
{{- fail "secrets.pseudonymizationSecret must hold at least 16 bytes" -}}
{{- end -}}
pseudonymization-secret: {{ b64enc $secret | quote }}
api-tokens: {{ join "\n" .Values.secrets.apiTokens | b64enc | quote }}
{{- range $key, $value := .Values.secrets.files }}
{{- if or (eq $key "pseudonymization-secret") (eq $key "api-tokens") }}
{{- fail (printf "secrets.files: %q is a reserved key" $key) }}
{{- end }}
{{ $key }}: {{ b64enc $value | quote }}
{{- end -}}
{{- end -}}
