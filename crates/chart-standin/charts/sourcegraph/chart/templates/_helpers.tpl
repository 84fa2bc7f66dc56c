{{- define "sourcegraph.selectorLabels" -}}
app.kubernetes.io/name: sourcegraph
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sourcegraph.labels" -}}
{{ include "sourcegraph.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.Version | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.sourcegraph.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "sourcegraph.tag" -}}
{{ .Values.sourcegraph.image.defaultTag | default .Chart.AppVersion }}
{{- end -}}
