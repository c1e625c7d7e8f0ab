{{/*
Sidecar mode: what an app's chart includes to run the relay in its own pods. The app chart has
this chart as a dependency (charts/wsrelay), sets wsrelay.mode: sidecar in its values, and passes
the wsrelay values the release, and optionally its replica count and whether an HPA scales it
(more than one pod is refused with the memory broker, or with a Redis on the pod's localhost):

  {{- $wsrelay := dict "Values" .Values.wsrelay "Release" .Release "replicas" .Values.replicaCount "autoscaling" (and .Values.autoscaling .Values.autoscaling.enabled) }}
  template:
    metadata:
      annotations:
        {{- include "wsrelay.sidecar.podAnnotations" $wsrelay | nindent 8 }}
    spec:
      terminationGracePeriodSeconds: {{ include "wsrelay.sidecar.terminationGracePeriodSeconds" $wsrelay }}
      containers:
        - name: app
          ...
        {{- include "wsrelay.sidecar.container" $wsrelay | nindent 8 }}
      volumes:
        {{- include "wsrelay.sidecar.volumes" $wsrelay | nindent 8 }}
        # and the pod's own volumes (wsrelay.extraVolumeMounts may mount them)

The wsrelay subchart itself renders the ConfigMap and Secret these refer to. docs/operations.md
has the whole example.
*/}}

{{- define "wsrelay.sidecar.container" -}}
{{- if ne .Values.mode "sidecar" -}}
{{- fail "wsrelay.sidecar.container: set wsrelay.mode: sidecar in the app chart's values, or the wsrelay subchart also deploys a standalone relay" -}}
{{- end -}}
{{- include "wsrelay.container" (merge (dict "portName" "wsrelay") .) -}}
{{- end -}}

{{- define "wsrelay.sidecar.volumes" -}}
{{- include "wsrelay.volumes" . -}}
{{- end -}}

{{- define "wsrelay.sidecar.podAnnotations" -}}
{{- include "wsrelay.podChecksums" . -}}
{{- end -}}

{{- define "wsrelay.sidecar.terminationGracePeriodSeconds" -}}
{{- include "wsrelay.terminationGracePeriodSeconds" . -}}
{{- end -}}

{{/*
The relay sends hook events (disconnect) to the app until it exits, so the app should keep
serving that long: a preStop sleep of this many seconds on the app container does it.
*/}}
{{- define "wsrelay.sidecar.relayStopSeconds" -}}
{{- include "wsrelay.stopSeconds" . -}}
{{- end -}}
