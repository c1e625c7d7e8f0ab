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

{{/* The in-chart Redis's password: the chart's Secret (<fullname>-redis) or redis.auth.existingSecret. */}}
{{- define "wsrelay.redisSecretName" -}}
{{- default (include "wsrelay.redisName" .) (dig "auth" "existingSecret" "" (default dict .Values.redis)) -}}
{{- end -}}

{{- define "wsrelay.redisSecretKey" -}}
{{- $auth := dig "auth" (dict) (default dict .Values.redis) -}}
{{- ternary (default "redis-password" $auth.existingSecretKey) "redis-password" (not (empty $auth.existingSecret)) -}}
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
{{- with include "wsrelay.versionLabel" . }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
{{- end -}}

{{/*
The app.kubernetes.io/version label: a label value (at most 63 characters of [A-Za-z0-9._-],
alphanumeric at both ends), never an image reference. The tag without any @digest, "+" (semver
build metadata) as "_", anything else not allowed as "-"; with only a digest, the chart's
appVersion. Empty (no label) when nothing is left. Reads .Chart: the chart's own objects only.
*/}}
{{- define "wsrelay.versionLabel" -}}
{{- $v := regexReplaceAll "@.*$" (toString (default "" .Values.image.tag)) "" -}}
{{- if not $v -}}
{{- $v = toString .Chart.AppVersion -}}
{{- end -}}
{{- $v = regexReplaceAll "[^A-Za-z0-9._-]" ($v | replace "+" "_") "-" | trunc 63 -}}
{{- regexReplaceAll "^[^A-Za-z0-9]+|[^A-Za-z0-9]+$" $v "" -}}
{{- end -}}

{{/*
An image reference from a dict with registry, repository, tag and digest: registry/repository,
then @digest when a digest is set (it wins over the tag), else :tag. The relay's image in both
modes (wsrelay.image).
*/}}
{{- define "wsrelay.imageRef" -}}
{{- $repo := required "image.repository is required" .repository -}}
{{- with trimSuffix "/" (toString (default "" .registry)) -}}
{{- $repo = printf "%s/%s" . $repo -}}
{{- end -}}
{{- $digest := toString (default "" .digest) -}}
{{- if $digest -}}
{{- if not (regexMatch "^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$" $digest) -}}
{{- fail (printf "image.digest %q is not a digest: sha256: and 64 lower-case hex digits (or sha512: and 128)" $digest) -}}
{{- end -}}
{{- printf "%s@%s" $repo $digest -}}
{{- else -}}
{{- $tag := toString (required "image.tag or image.digest is required" .tag) -}}
{{- if not (regexMatch "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(@[a-z0-9]+:[a-f0-9]{32,})?$" $tag) -}}
{{- fail (printf "image.tag %q is not an image tag: letters, digits, _ . - (at most 128; registries write semver build metadata's + as _), optionally followed by @sha256:<digest>" $tag) -}}
{{- end -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}
{{- end -}}

{{- define "wsrelay.image" -}}
{{- include "wsrelay.imageRef" .Values.image -}}
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
Workers for the CPU the chart gives the relay container (its resources, in both modes): the CPU
limit when set, else the request, rounded up to whole CPUs, at least 1 ("250m" -> 1, "1.5" -> 2,
2 -> 2). Empty without either: the relay then uses one per CPU it can use (docs/config.md).
*/}}
{{- define "wsrelay.cpuWorkers" -}}
{{- $res := default dict .Values.resources -}}
{{- $cpu := dig "limits" "cpu" "" $res -}}
{{- if not $cpu -}}
{{- $cpu = dig "requests" "cpu" "" $res -}}
{{- end -}}
{{- if $cpu -}}
{{- $s := toString $cpu -}}
{{- $n := 0 -}}
{{- if hasSuffix "m" $s -}}
{{- $n = div (add (int64 (trimSuffix "m" $s)) 999) 1000 -}}
{{- else if regexMatch "^[0-9]+([.][0-9]*)?$" $s -}}
{{- $n = int64 (ceil (float64 $s)) -}}
{{- else -}}
{{- fail (printf "resources cpu %q: the chart reads whole CPUs (2, \"1.5\") or millicores (\"250m\")" $s) -}}
{{- end -}}
{{- max 1 $n -}}
{{- end -}}
{{- end -}}

{{/*
The configuration file: .Values.config with what the other values imply laid over it (the
in-chart Redis, the mounted JWT key files, the hook).
*/}}
{{- define "wsrelay.config" -}}
{{- $cfg := deepCopy (default dict .Values.config) -}}
{{- if not (int64 (default 0 $cfg.workers)) -}}
{{- with include "wsrelay.cpuWorkers" . -}}
{{- $_ := set $cfg "workers" (int64 .) -}}
{{- end -}}
{{- end -}}
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
{{- include "wsrelay.validateBroker" . -}}
{{- $internal := include "wsrelay.internalPort" . | int -}}
{{- if and $internal (eq $internal (include "wsrelay.port" . | int)) -}}
{{- fail (printf "config.listen.internal_port %d equals config.listen.port: the relay refuses it at start; pick another port (or 0 for one port)" $internal) -}}
{{- end -}}
{{- if eq .Values.mode "sidecar" -}}
{{- range $key := list "extraVolumes" "initContainers" -}}
{{- if index $.Values $key -}}
{{- fail (printf "wsrelay.%s is for the standalone Deployment: in sidecar mode the pod is your app's, declare volumes and init containers there (the relay container gets wsrelay.extraVolumeMounts)" $key) -}}
{{- end -}}
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

{{/*
The broker mistakes, refused alike in both modes (called by wsrelay.validate): the memory
broker with more than one pod, and the Redis broker pointing at the pod's own localhost.
Standalone, more than one pod is replicaCount > 1 or autoscaling.enabled; in sidecar mode it is
what the app chart passes: .replicas > 1 or .autoscaling true. A standalone relay pod never has
a Redis on localhost; an app's single pod may run one beside the relay, so sidecar mode refuses
localhost only when the app runs more than one pod.
*/}}
{{- define "wsrelay.validateBroker" -}}
{{- $broker := include "wsrelay.brokerType" . -}}
{{- $sidecar := eq .Values.mode "sidecar" -}}
{{- $p := ternary "wsrelay." "" $sidecar -}}
{{- $many := "" -}}
{{- if $sidecar -}}
{{- if gt (int (default 1 .replicas)) 1 -}}
{{- $many = "the app runs more than one replica" -}}
{{- else if .autoscaling -}}
{{- $many = "the app is autoscaled" -}}
{{- end -}}
{{- else if gt (int .Values.replicaCount) 1 -}}
{{- $many = "replicaCount > 1" -}}
{{- else if .Values.autoscaling.enabled -}}
{{- $many = "autoscaling.enabled" -}}
{{- end -}}
{{- if and (eq $broker "memory") $many -}}
{{- if $sidecar -}}
{{- fail (printf "%s: each pod's relay needs a shared broker, the memory broker delivers only within one pod (set wsrelay.config.broker.type: redis, or wsrelay.redis.enabled)" $many) -}}
{{- else -}}
{{- fail (printf "%s needs a shared broker: the memory broker delivers only within one pod (set config.broker.type: redis, or redis.enabled)" $many) -}}
{{- end -}}
{{- end -}}
{{- if and (eq $broker "redis") (not .Values.redis.enabled) (not (or .Values.secret.redisUrl .Values.secret.existingSecret)) (or (not $sidecar) $many) -}}
{{- $r := dig "broker" "redis" (dict) (default dict .Values.config) -}}
{{- if and (regexMatch `^rediss?://([^@/]*@)?(127\.0\.0\.1|localhost|\[::1\])([:/]|$)` (toString $r.url)) (not $r.cluster) (not (dig "sentinel" "master" "" $r)) -}}
{{- if $sidecar -}}
{{- fail (printf "config.broker.type redis points at a Redis on the pod's own localhost, and %s: each pod would have its own; set wsrelay.config.broker.redis.url (or wsrelay.secret.redisUrl), or wsrelay.redis.enabled" $many) -}}
{{- else -}}
{{- fail "config.broker.type redis points at a Redis on the pod's own localhost: set config.broker.redis.url (or secret.redisUrl), or redis.enabled" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Environment variables from the Secret. */}}
{{- define "wsrelay.secretEnv" -}}
{{- $s := .Values.secret -}}
{{- $name := include "wsrelay.secretName" . -}}
{{- $inChartRedis := .Values.redis.enabled }}
{{- range $item := list (list "WSRELAY_API_KEY" "apiKey") (list "WSRELAY_AUTH_JWT_SECRET" "jwtSecret") (list "WSRELAY_BROKER_REDIS_URL" "redisUrl") (list "WSRELAY_BROKER_REDIS_SENTINEL_PASSWORD" "sentinelPassword") (list "WSRELAY_HOOK_SECRET" "hookSecret") }}
{{- $env := index $item 0 }}
{{- $field := index $item 1 }}
{{- /* With the in-chart Redis its URL wins: no redis-url of secret: then. */}}
{{- if and (or $s.existingSecret (index $s $field)) (not (and $inChartRedis (eq $field "redisUrl"))) }}
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
{{- if and $inChartRedis (dig "auth" "enabled" false .Values.redis) }}
{{- /* The password into the in-chart Redis's URL: the kubelet expands $(REDIS_PASSWORD). */}}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "wsrelay.redisSecretName" . }}
      key: {{ include "wsrelay.redisSecretKey" . }}
- name: WSRELAY_BROKER_REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:6379/0" (include "wsrelay.redisName" .) | quote }}
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
  {{- with .Values.envFrom }}
  envFrom:
    {{- toYaml . | nindent 4 }}
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
    {{- with .Values.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
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
{{- /* Standalone only: wsrelay.validate refuses extraVolumes in sidecar mode. */}}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The job label the scrape gives the relay's targets (docs/operations.md, "Alert tuning"): the
ServiceMonitor's is <fullname> (its Service's name; the internal Service's endpoint relabels its
job to the same); the PodMonitor's (sidecar mode) is <namespace>/<PodMonitor name>.
*/}}
{{- define "wsrelay.alertJob" -}}
{{- $fullname := include "wsrelay.fullname" . -}}
{{- if eq .Values.mode "sidecar" -}}
{{- printf "%s/%s" .Release.Namespace $fullname -}}
{{- else -}}
{{- $fullname -}}
{{- end -}}
{{- end -}}

{{/* The label matchers that replace job="wsrelay" in the shipped rules: this release's. */}}
{{- define "wsrelay.alertScope" -}}
{{- with .Values.prometheusRule.jobSelector -}}
{{- . -}}
{{- else -}}
{{- printf "namespace=%q,job=%q" .Release.Namespace (include "wsrelay.alertJob" .) -}}
{{- end -}}
{{- end -}}

{{/*
WsrelayDeliveryProbeStale's threshold in seconds: three missed probes and a probe timeout, never
under the rule file's 10 s.
*/}}
{{- define "wsrelay.probeStaleSeconds" -}}
{{- $redis := dig "broker" "redis" (dict) (default dict .Values.config) -}}
{{- $interval := int64 1000 -}}
{{- if not (kindIs "invalid" $redis.probe_interval_ms) -}}
{{- $interval = $redis.probe_interval_ms | int64 -}}
{{- end -}}
{{- $timeout := default 3000 $redis.probe_timeout_ms | int64 -}}
{{- max 10 (div (add (mul 3 $interval) $timeout 999) 1000) -}}
{{- end -}}

{{/*
One alerting rule of the shipped files, scoped and tuned for this release. Context: dict "rule",
"root" (the chart's context), "scope" (wsrelay.alertScope); YAML with the rule under "rule", or
nothing when the rule is disabled.
*/}}
{{- define "wsrelay.alertRule" -}}
{{- $r := deepCopy .rule -}}
{{- $root := .root -}}
{{- $p := $root.Values.prometheusRule -}}
{{- $name := toString $r.alert -}}
{{- $o := default dict (index (default dict $p.rules) $name) -}}
{{- if or (not (hasKey $o "enabled")) $o.enabled -}}
{{- if not (contains `job="wsrelay"` (toString $r.expr)) -}}
{{- fail (printf "alerts/: %s: its expression has no job=\"wsrelay\" selector for the chart to scope to the release" $name) -}}
{{- end -}}
{{- $expr := replace `job="wsrelay"` .scope $r.expr -}}
{{- $expr = replace `container="wsrelay"` (printf "namespace=%q,container=\"wsrelay\"" $root.Release.Namespace) $expr -}}
{{- $token := `[0-9][0-9.eE+-]* # threshold` -}}
{{- $threshold := "" -}}
{{- if hasKey $o "threshold" -}}
{{- if not (or (kindIs "float64" $o.threshold) (kindIs "int64" $o.threshold) (kindIs "int" $o.threshold)) -}}
{{- fail (printf "prometheusRule.rules.%s.threshold must be a number" $name) -}}
{{- end -}}
{{- $threshold = toString $o.threshold -}}
{{- else if eq $name "WsrelayDeliveryProbeStale" -}}
{{- $threshold = include "wsrelay.probeStaleSeconds" $root -}}
{{- end -}}
{{- if $threshold -}}
{{- if not (regexMatch $token $expr) -}}
{{- fail (printf "prometheusRule.rules.%s.threshold: %s alerts on a state and has no threshold" $name $name) -}}
{{- end -}}
{{- $expr = regexReplaceAll $token $expr (printf "%s # threshold" $threshold) -}}
{{- end -}}
{{- $_ := set $r "expr" $expr -}}
{{- with $o.for -}}
{{- $_ := set $r "for" . -}}
{{- end -}}
{{- $labels := deepCopy (default dict $o.labels) -}}
{{- with $o.severity -}}
{{- $_ := set $labels "severity" . -}}
{{- end -}}
{{- $labels = merge $labels (deepCopy (default dict $p.additionalLabels)) (default dict $r.labels) -}}
{{- $_ := set $r "labels" $labels -}}
{{- $annotations := default dict $r.annotations -}}
{{- with $annotations.runbook_url -}}
{{- if not (regexMatch `^[a-z]+://` .) -}}
{{- $_ := set $annotations "runbook_url" (printf "%s#%s" (trimSuffix "#" $p.runbookBaseUrl) (regexReplaceAll `^[^#]*#` . "")) -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "rule" $r) -}}
{{- end -}}
{{- end -}}

{{/* Exposure: the one path an Ingress or HTTPRoute routes, config.websocket.path. */}}
{{- define "wsrelay.websocketPath" -}}
{{- dig "websocket" "path" "/ws" (default dict .Values.config) -}}
{{- end -}}

{{/* Refuses an Ingress or HTTPRoute that cannot work. Standalone mode only. */}}
{{- define "wsrelay.exposure.validate" -}}
{{- if and .Values.ingress.enabled (ne .Values.mode "standalone") -}}
{{- fail "ingress.enabled is for standalone mode: in sidecar mode route config.websocket.path to your app's Service (port wsrelay)" -}}
{{- end -}}
{{- if and .Values.httpRoute.enabled (ne .Values.mode "standalone") -}}
{{- fail "httpRoute.enabled is for standalone mode: in sidecar mode route config.websocket.path to your app's Service (port wsrelay)" -}}
{{- end -}}
{{- if .Values.ingress.enabled -}}
{{- if not .Values.ingress.hosts -}}
{{- fail "ingress.enabled needs at least one entry in ingress.hosts, e.g. [{host: chat.example.com}]" -}}
{{- end -}}
{{- range .Values.ingress.hosts -}}
{{- if not (and (kindIs "map" .) .host) -}}
{{- fail (printf "ingress.hosts: every entry needs a host, e.g. {host: chat.example.com}, not %s" (toJson .)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.httpRoute.enabled (not .Values.httpRoute.parentRefs) -}}
{{- fail "httpRoute.enabled needs httpRoute.parentRefs: the Gateway to attach to, e.g. [{name: public, namespace: gateway-system}]" -}}
{{- end -}}
{{- end -}}

{{/*
NetworkPolicy: the relay's ports as the policy sees them. A policy opens ports, not paths, so
/metrics and /api/* need listen.internal_port; without it the policy would open them to every
client allowed on the public port.
*/}}
{{- define "wsrelay.networkPolicy.internalPort" -}}
{{- $internal := include "wsrelay.internalPort" . | int -}}
{{- if eq $internal 0 -}}
{{- fail "networkPolicy needs config.listen.internal_port (e.g. 9090): a NetworkPolicy opens ports, not paths, and with /metrics and /api/* on listen.port every client allowed there could reach them" -}}
{{- end -}}
{{- $internal -}}
{{- end -}}

{{/* The ports of the Redis the relay uses, comma-separated: the URL's, the cluster's, the sentinels'. */}}
{{- define "wsrelay.networkPolicy.redisPorts" -}}
{{- $r := dig "broker" "redis" (dict) (default dict .Values.config) -}}
{{- $ports := list -}}
{{- $urlPort := regexReplaceAll `^rediss?://([^@/]*@)?(\[[^\]]*\]|[^:/?#]*)(:([0-9]+))?([/?#].*)?$` (toString (default "" $r.url)) "${4}" -}}
{{- $ports = append $ports (ternary $urlPort "6379" (regexMatch `^[0-9]+$` $urlPort)) -}}
{{- range $addr := concat (default list $r.cluster) (dig "sentinel" "addrs" (list) $r) -}}
{{- $ports = append $ports (regexReplaceAll `^.*:([0-9]+)$` (toString $addr) "${1}") -}}
{{- end -}}
{{- $ports | uniq | join "," -}}
{{- end -}}

{{/* NetworkPolicyPort items: ports PORTS (list of numbers) over TCP. */}}
{{- define "wsrelay.networkPolicy.tcpPorts" -}}
{{- range . }}
- port: {{ . | int }}
  protocol: TCP
{{- end }}
{{- end -}}

{{/*
The relay pod's ingress rules (NetworkPolicyIngressRule items): clients on listen.port, Prometheus
and the app on listen.internal_port. A rule without from admits every source, so the internal
rule is left out when no peer is listed.
*/}}
{{- define "wsrelay.networkPolicy.ingressRules" -}}
{{- $np := .Values.networkPolicy -}}
{{- $internal := include "wsrelay.networkPolicy.internalPort" . | int -}}
# Clients: WebSocket upgrades, and the kubelet's probes, on listen.port.
- ports:
    {{- include "wsrelay.networkPolicy.tcpPorts" (list (include "wsrelay.port" . | int)) | trim | nindent 4 }}
  {{- with $np.clientsFrom }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- $internalFrom := concat (default list $np.prometheusFrom) (default list $np.apiFrom) }}
{{- if $internalFrom }}
# Prometheus (/metrics) and the app (/api/*) on listen.internal_port.
- ports:
    {{- include "wsrelay.networkPolicy.tcpPorts" (list $internal) | trim | nindent 4 }}
  from:
    {{- toYaml $internalFrom | nindent 4 }}
{{- end }}
{{- end -}}

{{/*
The relay pod's egress rules (NetworkPolicyEgressRule items): DNS, the broker's Redis, the hook,
and networkPolicy.extraEgress (e.g. a JWKS URL).
*/}}
{{- define "wsrelay.networkPolicy.egressRules" -}}
{{- $np := .Values.networkPolicy -}}
# DNS.
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
  {{- with $np.dnsTo }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- if .Values.redis.enabled }}
# The in-chart Redis.
- ports:
    {{- include "wsrelay.networkPolicy.tcpPorts" (list 6379) | trim | nindent 4 }}
  to:
    - podSelector:
        matchLabels:
          {{- include "wsrelay.redisSelectorLabels" . | nindent 10 }}
{{- else if eq (include "wsrelay.brokerType" .) "redis" }}
# The broker's Redis.
- ports:
    {{- include "wsrelay.networkPolicy.tcpPorts" (default (splitList "," (include "wsrelay.networkPolicy.redisPorts" .)) $np.redisTo.ports) | trim | nindent 4 }}
  {{- with $np.redisTo.peers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- $hookHost := regexReplaceAll `^[a-zA-Z]+://([^@/]*@)?(\[[^\]]*\]|[^:/?#]*).*$` (toString .Values.hook.url) "${2}" }}
{{- /* A hook in the same pod (sidecar mode) is reached over loopback, which no policy filters. */}}
{{- if and .Values.hook.url (not (has (lower $hookHost) (list "127.0.0.1" "localhost" "[::1]"))) }}
{{- with .Values.hook.url }}
{{- $hookPort := regexReplaceAll `^[a-zA-Z]+://([^@/]*@)?(\[[^\]]*\]|[^:/?#]*)(:([0-9]+))?([/?#].*)?$` . "${4}" }}
{{- if not (regexMatch `^[0-9]+$` $hookPort) }}
{{- $hookPort = ternary "443" "80" (hasPrefix "https:" (lower .)) }}
{{- end }}
# The hook.
- ports:
    {{- include "wsrelay.networkPolicy.tcpPorts" (default (list $hookPort) $np.hookTo.ports) | trim | nindent 4 }}
  {{- with $np.hookTo.peers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}
{{- with $np.extraEgress }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Sidecar mode: the relay's share of the app pod's NetworkPolicy, as rule items to put in the
app's own policy's ingress: and egress: lists (docs/operations.md, "NetworkPolicy").
*/}}
{{- define "wsrelay.sidecar.networkPolicyIngress" -}}
{{- include "wsrelay.networkPolicy.ingressRules" . -}}
{{- end -}}

{{- define "wsrelay.sidecar.networkPolicyEgress" -}}
{{- include "wsrelay.networkPolicy.egressRules" . -}}
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
