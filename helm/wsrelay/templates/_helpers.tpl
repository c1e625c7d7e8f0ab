{{/*
Every helper takes a context with .Values (the wsrelay values) and .Release, and never reads
.Chart: the sidecar templates run in the app chart's context, as
(dict "Values" .Values.wsrelay "Release" .Release), and must give the same names there.
*/}}

{{- define "wsrelay.name" -}}
{{- default "wsrelay" .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wsrelay.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "wsrelay.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Names of what the chart creates; the suffixes keep within 63 characters. */}}
{{- define "wsrelay.configMapName" -}}
{{- include "wsrelay.fullname" . -}}
{{- end -}}

{{- define "wsrelay.secretName" -}}
{{- default (include "wsrelay.fullname" .) .Values.secret.existingSecret -}}
{{- end -}}

{{- define "wsrelay.redisName" -}}
{{- printf "%s-redis" (include "wsrelay.fullname" . | trunc 57 | trimSuffix "-") -}}
{{- end -}}

{{- define "wsrelay.jwtKeysConfigMapName" -}}
{{- printf "%s-jwt-keys" (include "wsrelay.fullname" . | trunc 54 | trimSuffix "-") -}}
{{- end -}}

{{- define "wsrelay.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "wsrelay.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "wsrelay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wsrelay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Distinct from the relay's, so that no relay selector (Service, ServiceMonitor) matches Redis. */}}
{{- define "wsrelay.redisSelectorLabels" -}}
app.kubernetes.io/name: {{ include "wsrelay.name" . }}-redis
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Only for the chart's own objects: it reads .Chart. */}}
{{- define "wsrelay.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: wsrelay
{{- end -}}

{{- define "wsrelay.labels" -}}
{{ include "wsrelay.commonLabels" . }}
{{ include "wsrelay.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
{{- end -}}

{{- define "wsrelay.image" -}}
{{- $repo := required "image.repository is required" .Values.image.repository -}}
{{- $tag := required "image.tag is required" .Values.image.tag -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* The broker the relay will use: redis.enabled forces redis. */}}
{{- define "wsrelay.brokerType" -}}
{{- if .Values.redis.enabled -}}
redis
{{- else -}}
{{- dig "broker" "type" "memory" (default dict .Values.config) | lower -}}
{{- end -}}
{{- end -}}

{{- define "wsrelay.port" -}}
{{- dig "listen" "port" 8080 (default dict .Values.config) | int -}}
{{- end -}}

{{/*
The configuration file: .Values.config with what the other values imply laid over it (the
in-chart Redis, the mounted JWT key files, the hook).
*/}}
{{- define "wsrelay.config" -}}
{{- $cfg := deepCopy (default dict .Values.config) -}}
{{- if .Values.redis.enabled -}}
{{- $broker := default dict $cfg.broker -}}
{{- $redis := default dict $broker.redis -}}
{{- $_ := set $redis "url" (printf "redis://%s:6379/0" (include "wsrelay.redisName" .)) -}}
{{- $_ := set $broker "redis" $redis -}}
{{- $_ := set $broker "type" "redis" -}}
{{- $_ := set $cfg "broker" $broker -}}
{{- end -}}
{{- $keys := .Values.jwtKeys -}}
{{- if or $keys.publicKeyFile $keys.jwksFile -}}
{{- $auth := default dict $cfg.auth -}}
{{- $jwt := default dict $auth.jwt -}}
{{- if $keys.publicKeyFile -}}
{{- $_ := set $jwt "public_key_file" (printf "%s/%s" (trimSuffix "/" $keys.mountPath) $keys.publicKeyFile) -}}
{{- end -}}
{{- if $keys.jwksFile -}}
{{- $_ := set $jwt "jwks_url" (printf "file://%s/%s" (trimSuffix "/" $keys.mountPath) $keys.jwksFile) -}}
{{- end -}}
{{- $_ := set $auth "jwt" $jwt -}}
{{- $_ := set $cfg "auth" $auth -}}
{{- end -}}
{{- $t := .Values.tlsFiles -}}
{{- $tlsDir := trimSuffix "/" $t.mountPath -}}
{{- if or $t.redisCaFile $t.redisCertFile $t.redisKeyFile -}}
{{- $broker := default dict $cfg.broker -}}
{{- $redis := default dict $broker.redis -}}
{{- $tls := default dict $redis.tls -}}
{{- range $field, $file := dict "ca_file" $t.redisCaFile "cert_file" $t.redisCertFile "key_file" $t.redisKeyFile -}}
{{- if $file -}}
{{- $_ := set $tls $field (printf "%s/%s" $tlsDir $file) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $redis "tls" $tls -}}
{{- $_ := set $broker "redis" $redis -}}
{{- $_ := set $cfg "broker" $broker -}}
{{- end -}}
{{- if $t.jwksCaFile -}}
{{- $auth := default dict $cfg.auth -}}
{{- $jwt := default dict $auth.jwt -}}
{{- $_ := set $jwt "jwks_ca_file" (printf "%s/%s" $tlsDir $t.jwksCaFile) -}}
{{- $_ := set $auth "jwt" $jwt -}}
{{- $_ := set $cfg "auth" $auth -}}
{{- end -}}
{{- if .Values.hook.url -}}
{{- $_ := set $cfg "hook" (deepCopy .Values.hook) -}}
{{- if $t.hookCaFile -}}
{{- $_ := set $cfg.hook "ca_file" (printf "%s/%s" $tlsDir $t.hookCaFile) -}}
{{- end -}}
{{- end -}}
{{- if .Values.tls.existingSecret -}}
{{- $tls := default dict $cfg.tls -}}
{{- $dir := trimSuffix "/" .Values.tls.mountPath -}}
{{- $_ := set $tls "cert_file" (printf "%s/%s" $dir .Values.tls.certFile) -}}
{{- $_ := set $tls "key_file" (printf "%s/%s" $dir .Values.tls.keyFile) -}}
{{- $_ := set $cfg "tls" $tls -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/*
The longest the relay takes to exit once its pod is being deleted: the preStop sleep, the drain
window (rounded up), the relay's own 5 s cut-off after the window and, with the hook, the wait
for the last hook events and disconnects (hook.timeout_ms + 1 s, docs/hook.md).
*/}}
{{- define "wsrelay.stopSeconds" -}}
{{- $window := dig "drain" "window_ms" 10000 (default dict .Values.config) | int64 -}}
{{- $hook := 0 -}}
{{- if .Values.hook.url -}}
{{- $hook = add (div (add (default 5000 .Values.hook.timeout_ms | int64) 999) 1000) 1 -}}
{{- end -}}
{{- add .Values.lifecycle.preStopSleepSeconds (div (add $window 999) 1000) 5 $hook -}}
{{- end -}}

{{/* Seconds the pod gets after deletion starts: wsrelay.stopSeconds and a margin. */}}
{{- define "wsrelay.terminationGracePeriodSeconds" -}}
{{- $minimum := include "wsrelay.stopSeconds" . | int64 -}}
{{- $explicit := .Values.lifecycle.terminationGracePeriodSeconds -}}
{{- if kindIs "invalid" $explicit -}}
{{- add $minimum .Values.lifecycle.extraGraceSeconds -}}
{{- else if lt (int64 $explicit) (int64 $minimum) -}}
{{- fail (printf "lifecycle.terminationGracePeriodSeconds %d is shorter than the relay may take to stop (preStop sleep + drain.window_ms + 5 s, + hook.timeout_ms + 1 s with the hook) = %d" (int64 $explicit) (int64 $minimum)) -}}
{{- else -}}
{{- int64 $explicit -}}
{{- end -}}
{{- end -}}

{{/* "true" when the relay's port speaks TLS (probes and scrapes use HTTPS), else "". */}}
{{- define "wsrelay.tlsOn" -}}
{{- if or .Values.tls.existingSecret (dig "tls" "cert_file" "" (default dict .Values.config)) -}}
true
{{- end -}}
{{- end -}}

{{/* Sources of the JWT key files; fails on a half-configured one. */}}
{{- define "wsrelay.jwtKeysVolumeSource" -}}
{{- $k := .Values.jwtKeys -}}
{{- if and $k.existingSecret $k.existingConfigMap -}}
{{- fail "jwtKeys: set existingSecret or existingConfigMap, not both" -}}
{{- end -}}
{{- if $k.existingSecret -}}
secret:
  secretName: {{ $k.existingSecret }}
{{- else if $k.existingConfigMap -}}
configMap:
  name: {{ $k.existingConfigMap }}
{{- else if $k.files -}}
configMap:
  name: {{ include "wsrelay.jwtKeysConfigMapName" . }}
{{- end -}}
{{- end -}}

{{/* Refuses values the relay cannot run with, before anything reaches the cluster. */}}
{{- define "wsrelay.validate" -}}
{{- if not (has .Values.mode (list "standalone" "sidecar")) -}}
{{- fail (printf "mode must be standalone or sidecar, not %q" (toString .Values.mode)) -}}
{{- end -}}
{{- $broker := include "wsrelay.brokerType" . -}}
{{- if not (has $broker (list "memory" "redis")) -}}
{{- fail (printf "config.broker.type must be memory or redis, not %q" $broker) -}}
{{- end -}}
{{- if and (eq .Values.mode "sidecar") (eq $broker "memory") (gt (int (default 1 .replicas)) 1) -}}
{{- fail "the app runs more than one replica: each pod's relay needs a shared broker, the memory broker delivers only within one pod (set wsrelay.config.broker.type: redis, or wsrelay.redis.enabled)" -}}
{{- end -}}
{{- if and (eq .Values.mode "standalone") (eq $broker "memory") -}}
{{- if gt (int .Values.replicaCount) 1 -}}
{{- fail "replicaCount > 1 needs a shared broker: the memory broker delivers only within one pod (set config.broker.type: redis, or redis.enabled)" -}}
{{- end -}}
{{- if .Values.autoscaling.enabled -}}
{{- fail "autoscaling.enabled needs a shared broker: the memory broker delivers only within one pod (set config.broker.type: redis, or redis.enabled)" -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.mode "standalone") (eq $broker "redis") (not .Values.redis.enabled) (not (or .Values.secret.redisUrl .Values.secret.existingSecret)) -}}
{{- $r := dig "broker" "redis" (dict) (default dict .Values.config) -}}
{{- if and (regexMatch `^redis://([^@/]*@)?(127\.0\.0\.1|localhost)([:/]|$)` (toString $r.url)) (not $r.cluster) (not (dig "sentinel" "master" "" $r)) -}}
{{- fail "config.broker.type redis points at a Redis on the pod's own localhost: set config.broker.redis.url (or secret.redisUrl), or redis.enabled" -}}
{{- end -}}
{{- end -}}
{{- $k := .Values.jwtKeys -}}
{{- range $file := list $k.publicKeyFile $k.jwksFile -}}
{{- if $file -}}
{{- if not (or $k.existingSecret $k.existingConfigMap $k.files) -}}
{{- fail (printf "jwtKeys: %s is named but there is no source for it: set jwtKeys.existingSecret, jwtKeys.existingConfigMap or jwtKeys.files" $file) -}}
{{- end -}}
{{- if and $k.files (not (or $k.existingSecret $k.existingConfigMap)) (not (hasKey $k.files $file)) -}}
{{- fail (printf "jwtKeys: %s is not one of jwtKeys.files" $file) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $t := .Values.tls.mountPath -}}
{{- if and .Values.tls.existingSecret (or (eq (trimSuffix "/" $t) "/etc/wsrelay/config") (hasPrefix "/etc/wsrelay/config/" $t) (eq (trimSuffix "/" $t) (trimSuffix "/" $k.mountPath))) -}}
{{- fail "tls.mountPath must be a directory of its own: not /etc/wsrelay/config (the config file) nor jwtKeys.mountPath" -}}
{{- end -}}
{{- if or (eq (trimSuffix "/" $k.mountPath) "/etc/wsrelay/config") (hasPrefix "/etc/wsrelay/config/" $k.mountPath) -}}
{{- fail "jwtKeys.mountPath must not be inside /etc/wsrelay/config, where the config file is mounted" -}}
{{- end -}}
{{- $t := .Values.tlsFiles -}}
{{- range $file := list $t.redisCaFile $t.redisCertFile $t.redisKeyFile $t.hookCaFile $t.jwksCaFile -}}
{{- if and $file (not $t.existingSecret) -}}
{{- fail (printf "tlsFiles: %s is named but tlsFiles.existingSecret is not set (keys and certificates come from a Secret)" $file) -}}
{{- end -}}
{{- end -}}
{{- if and $t.hookCaFile (not $.Values.hook.url) -}}
{{- fail "tlsFiles.hookCaFile is set but hook.url is not" -}}
{{- end -}}
{{- if or (eq (trimSuffix "/" $t.mountPath) "/etc/wsrelay/config") (hasPrefix "/etc/wsrelay/config/" $t.mountPath) -}}
{{- fail "tlsFiles.mountPath must not be inside /etc/wsrelay/config, where the config file is mounted" -}}
{{- end -}}
{{- $auth := dig "auth" (dict) (default dict .Values.config) -}}
{{- if $auth.enabled -}}
{{- $jwt := default dict $auth.jwt -}}
{{- if not (or .Values.secret.jwtSecret .Values.secret.existingSecret $k.publicKeyFile $k.jwksFile $jwt.public_key_file $jwt.jwks_url) -}}
{{- fail "config.auth.enabled needs a key: secret.jwtSecret (or a jwt-secret in secret.existingSecret), jwtKeys.publicKeyFile, jwtKeys.jwksFile or config.auth.jwt.jwks_url" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) -}}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable, not both (null the other)" -}}
{{- end -}}
{{- if and (eq .Values.mode "sidecar") .Values.serviceMonitor.enabled (not .Values.serviceMonitor.podSelector) -}}
{{- fail "serviceMonitor.podSelector (labels of the app's pods) is required in sidecar mode" -}}
{{- end -}}
{{- $_ := include "wsrelay.terminationGracePeriodSeconds" . -}}
{{- $_ := include "wsrelay.image" . -}}
{{- end -}}

{{/* Environment variables from the Secret. */}}
{{- define "wsrelay.secretEnv" -}}
{{- $s := .Values.secret -}}
{{- $name := include "wsrelay.secretName" . -}}
{{- range $item := list (list "WSRELAY_API_KEY" "apiKey") (list "WSRELAY_AUTH_JWT_SECRET" "jwtSecret") (list "WSRELAY_BROKER_REDIS_URL" "redisUrl") (list "WSRELAY_BROKER_REDIS_SENTINEL_PASSWORD" "sentinelPassword") (list "WSRELAY_HOOK_SECRET" "hookSecret") }}
{{- $env := index $item 0 }}
{{- $field := index $item 1 }}
{{- if or $s.existingSecret (index $s $field) }}
- name: {{ $env }}
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ index $s.keys $field }}
      {{- if $s.existingSecret }}
      optional: true
      {{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "wsrelay.secretData" -}}
{{- $s := .Values.secret -}}
{{- range $field := list "apiKey" "jwtSecret" "redisUrl" "sentinelPassword" "hookSecret" }}
{{- if index $s $field }}
{{ index $s.keys $field }}: {{ index $s $field | toString | b64enc }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The pod annotations that restart the relay when its configuration or secrets change. */}}
{{- define "wsrelay.podChecksums" -}}
checksum/wsrelay-config: {{ include "wsrelay.config" . | sha256sum }}
{{- if and (not .Values.secret.existingSecret) (include "wsrelay.secretData" .) }}
checksum/wsrelay-secret: {{ include "wsrelay.secretData" . | sha256sum }}
{{- end }}
{{- if and .Values.jwtKeys.files (not (or .Values.jwtKeys.existingSecret .Values.jwtKeys.existingConfigMap)) }}
checksum/wsrelay-jwt-keys: {{ toJson .Values.jwtKeys.files | sha256sum }}
{{- end }}
{{- end -}}

{{/*
The relay container, as one list item. Context: .Values, .Release, and .portName (the container
port's name: http standalone, wsrelay in an app's pod).
*/}}
{{- define "wsrelay.container" -}}
{{- include "wsrelay.validate" . -}}
{{- $port := include "wsrelay.port" . | int -}}
- name: wsrelay
  image: {{ include "wsrelay.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args:
    - --config
    - /etc/wsrelay/config/wsrelay.yaml
  ports:
    - name: {{ .portName }}
      containerPort: {{ $port }}
      protocol: TCP
    {{- with include "wsrelay.internalPort" . | int }}
    - name: {{ include "wsrelay.internalPortName" $ }}
      containerPort: {{ . }}
      protocol: TCP
    {{- end }}
  {{- $env := include "wsrelay.secretEnv" . }}
  {{- if or $env .Values.extraEnv }}
  env:
    {{- with $env }}
    {{- . | trim | nindent 4 }}
    {{- end }}
    {{- with .Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  {{- with .Values.probes }}
  startupProbe:
    httpGet:
      path: {{ .startup.path }}
      port: {{ $.portName }}
      {{- if include "wsrelay.tlsOn" $ }}
      scheme: HTTPS
      {{- end }}
    periodSeconds: {{ .startup.periodSeconds }}
    timeoutSeconds: {{ .startup.timeoutSeconds }}
    failureThreshold: {{ .startup.failureThreshold }}
  livenessProbe:
    httpGet:
      path: {{ .liveness.path }}
      port: {{ $.portName }}
      {{- if include "wsrelay.tlsOn" $ }}
      scheme: HTTPS
      {{- end }}
    initialDelaySeconds: {{ .liveness.initialDelaySeconds }}
    periodSeconds: {{ .liveness.periodSeconds }}
    timeoutSeconds: {{ .liveness.timeoutSeconds }}
    failureThreshold: {{ .liveness.failureThreshold }}
  readinessProbe:
    httpGet:
      path: {{ .readiness.path }}
      port: {{ $.portName }}
      {{- if include "wsrelay.tlsOn" $ }}
      scheme: HTTPS
      {{- end }}
    initialDelaySeconds: {{ .readiness.initialDelaySeconds }}
    periodSeconds: {{ .readiness.periodSeconds }}
    timeoutSeconds: {{ .readiness.timeoutSeconds }}
    failureThreshold: {{ .readiness.failureThreshold }}
    successThreshold: {{ .readiness.successThreshold }}
  {{- end }}
  lifecycle:
    preStop:
      {{- if .Values.lifecycle.sleepAction }}
      sleep:
        seconds: {{ .Values.lifecycle.preStopSleepSeconds }}
      {{- else }}
      exec:
        command: ["sleep", {{ .Values.lifecycle.preStopSleepSeconds | toString | quote }}]
      {{- end }}
  {{- with .Values.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: wsrelay-config
      mountPath: /etc/wsrelay/config
      readOnly: true
    - name: wsrelay-tmp
      mountPath: /tmp
    {{- if include "wsrelay.jwtKeysVolumeSource" . }}
    - name: wsrelay-jwt-keys
      mountPath: {{ .Values.jwtKeys.mountPath }}
      readOnly: true
    {{- end }}
    {{- if .Values.tls.existingSecret }}
    - name: wsrelay-tls
      mountPath: {{ .Values.tls.mountPath }}
      readOnly: true
    {{- end }}
    {{- if .Values.tlsFiles.existingSecret }}
    - name: wsrelay-tls-files
      mountPath: {{ .Values.tlsFiles.mountPath }}
      readOnly: true
    {{- end }}
{{- end -}}

{{/* The relay's volumes, as list items. */}}
{{- define "wsrelay.volumes" -}}
- name: wsrelay-config
  configMap:
    name: {{ include "wsrelay.configMapName" . }}
    items:
      - key: wsrelay.yaml
        path: wsrelay.yaml
- name: wsrelay-tmp
  emptyDir:
    medium: Memory
    sizeLimit: 16Mi
{{- with include "wsrelay.jwtKeysVolumeSource" . }}
- name: wsrelay-jwt-keys
  {{- . | nindent 2 }}
{{- end }}
{{- if .Values.tls.existingSecret }}
{{- /* A whole-Secret volume, no subPath: the kubelet updates it in place (subPath mounts never change). */}}
- name: wsrelay-tls
  secret:
    secretName: {{ .Values.tls.existingSecret }}
{{- end }}
{{- with .Values.tlsFiles.existingSecret }}
- name: wsrelay-tls-files
  secret:
    secretName: {{ . }}
{{- end }}
{{- end -}}

{{/* config.listen.internal_port: 0 (or unset) when the relay has no internal port. */}}
{{- define "wsrelay.internalPort" -}}
{{- dig "listen" "internal_port" 0 (default dict .Values.config) | int -}}
{{- end -}}

{{/*
The container port name of config.listen.internal_port, from .portName: `internal` beside `http`
(standalone); `wsrelay-int` beside `wsrelay` in an app's pod, whose own ports may be named
internal (a port name is at most 15 characters).
*/}}
{{- define "wsrelay.internalPortName" -}}
{{- if eq .portName "http" -}}internal{{- else -}}{{ .portName }}-int{{- end -}}
{{- end -}}

{{/* The Service of the internal port: <fullname>-internal, within the 63 characters of a name. */}}
{{- define "wsrelay.internalServiceName" -}}
{{- printf "%s-internal" (include "wsrelay.fullname" . | trunc 54 | trimSuffix "-") -}}
{{- end -}}

{{/* What tells the internal Service from the clients' one (the ServiceMonitor selects by it). */}}
{{- define "wsrelay.internalServiceLabel" -}}
app.kubernetes.io/component: internal
{{- end -}}
