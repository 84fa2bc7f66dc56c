{{/*
4.3.0 selects the server's pods by their component too. A Deployment's selector cannot
be changed by an upgrade (the API server refuses it): templates/selector-check.yaml
stops an upgrade from an older version before anything is applied.
*/}}
{{- define "acme.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end -}}

{{- define "acme.labels" -}}
{{ include "acme.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.Version | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
The test bed on a real cluster. By default (bed.image empty) this renders `image: IMAGE`,
the vendor-like image, which the Kubernetes API stand-in never pulls. When the e2e bed
runs against a real cluster it packages the charts with bed.image set (a small real image,
busybox), and then a container whose image does not contain "broken" runs bed.image with a
command standing in for the vendor binary: a Job's prints what it stands in for and exits
0; a long-running one serves HTTP on its ports (any path, so readiness probes pass) until
SIGTERM. An image containing "broken" is kept: no cluster can pull it, so it never starts,
as on the stand-in. Takes (dict "image" IMAGE "ports" (list PORT...) "bed" .Values.bed);
no ports means a Job.
*/}}
{{- define "acme.image" -}}
{{- if or (not .bed.image) (contains "broken" .image) -}}
image: {{ .image | quote }}
{{- else -}}
{{- $say := "echo \"test bed: standing in for $0 $*\"" -}}
{{- $script := $say -}}
{{- if .ports -}}
{{- $script = printf "trap 'exit 0' TERM; mkdir -p /tmp/www; echo ok >/tmp/www/healthz; %s;" $say -}}
{{- range .ports }}{{ $script = printf "%s httpd -f -p %v -h /tmp/www &" $script . }}{{ end -}}
{{- $script = printf "%s wait" $script -}}
{{- end -}}
image: {{ .bed.image | quote }}
command: {{ list "sh" "-c" $script .image | toJson }}
{{- end -}}
{{- end -}}
