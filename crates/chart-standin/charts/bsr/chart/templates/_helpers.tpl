{{- define "bsr.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "bsr.labels" -}}
{{ include "bsr.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.Version | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "bsr.imageTag" -}}
{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "bsr.schemaVersion" -}}
{{ index (.Chart.Annotations | default dict) "bsr.example/schema-version" | default "0" }}
{{- end -}}

{{/*
The migration hook pod's annotations for the kube stand-in (see the kube-standin README,
"Runs and logs"): only for values.yaml's migration.runSeconds, exitCode and log that differ
from their defaults, so that by default the Job renders exactly as before they existed.
*/}}
{{- define "bsr.migrationAnnotations" -}}
{{- with .Values.migration }}
{{- if .runSeconds }}
kube-standin/run-seconds: {{ .runSeconds | toString | quote }}
{{- end }}
{{- if .exitCode }}
kube-standin/exit-code: {{ .exitCode | toString | quote }}
{{- end }}
{{- if .log }}
kube-standin/log: {{ .log | toJson }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
The test bed on a real cluster. By default (bed.image empty) this renders `image: IMAGE`,
the vendor-like image, which the Kubernetes API stand-in never pulls. When the e2e bed
runs against a real cluster it packages the charts with bed.image set (a small real image,
busybox), and then a container whose image does not contain "broken" runs bed.image with a
command standing in for the vendor binary: a Job's prints what it stands in for and exits
0; a long-running one serves HTTP on its ports (any path, so readiness probes pass) until
SIGTERM. An image containing "broken" is kept: no cluster can pull it, so it never starts,
as on the stand-in. Takes (dict "image" IMAGE "ports" (list PORT...) "bed" .Values.bed
["run" .Values.migration]); no ports means a Job. A Job's "run" (migration.runSeconds,
log, exitCode) makes its command sleep, print $MIGRATION_LOG and exit with that code, as
the stand-in's kube-standin/* annotations make its pod do; at their defaults the command
is the same as without them.
*/}}
{{- define "bsr.image" -}}
{{- if or (not .bed.image) (contains "broken" .image) -}}
image: {{ .image | quote }}
{{- else -}}
{{- $say := "echo \"test bed: standing in for $0 $*\"" -}}
{{- $script := $say -}}
{{- if .ports -}}
{{- $script = printf "trap 'exit 0' TERM; mkdir -p /tmp/www; echo ok >/tmp/www/healthz; %s;" $say -}}
{{- range .ports }}{{ $script = printf "%s httpd -f -p %v -h /tmp/www &" $script . }}{{ end -}}
{{- $script = printf "%s wait" $script -}}
{{- else if .run -}}
{{- with .run -}}
{{- if .runSeconds }}{{ $script = printf "%s; sleep %v" $script .runSeconds }}{{ end -}}
{{- if .log }}{{ $script = printf `%s; printf '%%s\n' "$MIGRATION_LOG"` $script }}{{ end -}}
{{- if .exitCode }}{{ $script = printf "%s; exit %v" $script .exitCode }}{{ end -}}
{{- end -}}
{{- end -}}
image: {{ .bed.image | quote }}
command: {{ list "sh" "-c" $script .image | toJson }}
{{- end -}}
{{- end -}}
