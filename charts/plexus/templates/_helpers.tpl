{{/*
Labels of an object's metadata: the two deploy/ sets on everything
(app.kubernetes.io/name and component), Helm's usual ones, commonLabels.
Call with (dict "ctx" $ "component" "plexusd").
*/}}
{{- define "plexus.labels" -}}
{{ include "plexus.selectorLabels" .component }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The labels selectors and pods carry, as in deploy/ (the argument is the
component). They never change between releases: selectors are immutable.
*/}}
{{- define "plexus.selectorLabels" -}}
app.kubernetes.io/name: plexus
app.kubernetes.io/component: {{ . }}
{{- end }}

{{/* The image reference: repository:tag, or repository@digest. */}}
{{- define "plexus.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end }}

{{/* The image lines of a container. */}}
{{- define "plexus.containerImage" -}}
image: {{ include "plexus.image" . | quote }}
{{- with .Values.image.pullPolicy }}
imagePullPolicy: {{ . }}
{{- end }}
{{- end }}

{{/*
plexusd's configuration: config with extraConfig merged over it,
metricsAddress from metricsPort and ipamNamespace (the pool metrics' watch)
from the value ipamNamespace unless one of them sets it (plexusd's default
is kube-system). A dict, as JSON.
*/}}
{{- define "plexus.plexusdConfig" -}}
{{- $cfg := deepCopy .Values.plexusd.config -}}
{{- $cfg = mergeOverwrite $cfg (deepCopy .Values.plexusd.extraConfig) -}}
{{- if and (not (hasKey $cfg "ipamNamespace")) (ne .Values.ipamNamespace "kube-system") -}}
{{- $_ := set $cfg "ipamNamespace" .Values.ipamNamespace -}}
{{- end -}}
{{- if not (hasKey $cfg "metricsAddress") -}}
{{- $_ := set $cfg "metricsAddress" (printf ":%v" .Values.plexusd.metricsPort) -}}
{{- end -}}
{{ toJson $cfg }}
{{- end }}
