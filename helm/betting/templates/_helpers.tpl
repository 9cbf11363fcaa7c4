{{/* The chart name, or nameOverride. */}}
{{- define "betting.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every resource name: release and chart name, unless one contains the other. */}}
{{- define "betting.fullname" -}}
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

{{/* chart-version, as the helm.sh/chart label wants it. */}}
{{- define "betting.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every resource; call with (dict "ctx" $ "component" "bet-maker"). */}}
{{- define "betting.labels" -}}
helm.sh/chart: {{ include "betting.chart" .ctx }}
{{ include "betting.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: betting
{{- end }}

{{/* The labels that select one component's pods; they never change across upgrades. */}}
{{- define "betting.selectorLabels" -}}
app.kubernetes.io/name: {{ include "betting.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The image every component runs: by digest when imageDigest is set, else by tag. */}}
{{- define "betting.image" -}}
{{- if .Values.imageDigest -}}
{{ .Values.image.repository }}@{{ .Values.imageDigest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}
{{- end }}

{{/* The pods' ServiceAccount: the chart's own, a given one, or the namespace's default. */}}
{{- define "betting.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.name | default (include "betting.fullname" .) }}
{{- else -}}
{{ .Values.serviceAccount.name | default "default" }}
{{- end }}
{{- end }}

{{/* The Secret the chart creates for whatever has no existingSecret. */}}
{{- define "betting.secretName" -}}
{{ include "betting.fullname" . }}
{{- end }}

{{/* Whether the chart must create its Secret at all. */}}
{{- define "betting.createSecret" -}}
{{- if or (not .Values.database.existingSecret) (not .Values.auth.existingSecret) }}true{{ end }}
{{- end }}

{{/* The database URL the chart builds from database.host/port/name/user/password. */}}
{{- define "betting.databaseUrl" -}}
{{- $d := .Values.database }}
{{- /* urlquery is form encoding: a space becomes "+", which in a URL's user info stays a plus
(a literal "+" is already "%2B"), so spaces become "%20". */}}
{{- $auth := $d.user | urlquery | replace "+" "%20" }}
{{- if $d.password }}{{ $auth = printf "%s:%s" $auth ($d.password | urlquery | replace "+" "%20") }}{{ end }}
{{- printf "postgresql+psycopg2://%s@%s:%d/%s" $auth $d.host (int $d.port) $d.name }}
{{- end }}

{{/* The auth key the chart's Secret holds: the value given or, in developmentMode only, a key
published here. Never generated (no lookup, no random): every render is the same, so GitOps
tools (Argo CD, Flux, `helm template`) see no change and no token stops working. */}}
{{- define "betting.authSecret" -}}
{{- if .Values.auth.secret }}
{{- .Values.auth.secret }}
{{- else if .Values.developmentMode }}
{{- "chart-development-key-published-in-the-chart-never-use-it-in-production" }}
{{- else }}
{{- fail "auth: set auth.existingSecret to a Secret you created (e.g. `kubectl create secret generic betting-auth --from-literal=auth-secret=$(openssl rand -hex 32)`), or auth.secret; developmentMode=true uses a published key, for a throwaway cluster only" }}
{{- end }}
{{- end }}

{{/* The settings every container gets, as BETTING_* variables (betting/settings.py). The
broker's come apart, in betting.kafkaEnv, for its clients only. */}}
{{- define "betting.env" -}}
- name: BETTING_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret | default (include "betting.secretName" .) }}
      key: {{ ternary .Values.database.existingSecretKey "database-url" (not (empty .Values.database.existingSecret)) }}
{{ include "betting.authEnv" . }}
- name: BETTING_DATABASE_POOL_SIZE
  value: {{ .Values.database.poolSize | quote }}
- name: BETTING_COMMIT_INTERVAL_S
  value: {{ .Values.commitIntervalSeconds | quote }}
- name: BETTING_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: BETTING_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- range $name, $value := .Values.extraEnv }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* The auth key (and, in developmentMode, BETTING_ENV=dev): what minting a token needs. */}}
{{- define "betting.authEnv" -}}
- name: BETTING_AUTH_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.auth.existingSecret | default (include "betting.secretName" .) }}
      key: {{ ternary .Values.auth.existingSecretKey "auth-secret" (not (empty .Values.auth.existingSecret)) }}
{{- if .Values.developmentMode }}
- name: BETTING_ENV
  value: dev
{{- end }}
{{- end }}

{{/* How the topics are shaped (topics.*): for what creates or declares them. */}}
{{- define "betting.topicEnv" -}}
- name: BETTING_TOPIC_PARTITIONS
  value: {{ .Values.topics.partitions | quote }}
- name: BETTING_TOPIC_REPLICATION_FACTOR
  value: {{ .Values.topics.replicationFactor | quote }}
- name: BETTING_TOPIC_RETENTION_MS
  value: {{ .Values.topics.retentionMs | int64 | quote }}
{{- end }}

{{/* Pod-level security: a non-root user, the runtime's default seccomp profile, the release's
ServiceAccount without its token (nothing here calls the Kubernetes API). */}}
{{- define "betting.podSecurityContext" -}}
serviceAccountName: {{ include "betting.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Annotations for checkov on every workload: the checks this chart fails on purpose, and why. */}}
{{- define "betting.checkovSkips" -}}
checkov.io/skip1: CKV_K8S_35=settings are read only from BETTING_* environment variables (betting/settings.py); the values come from Secrets via secretKeyRef
checkov.io/skip3: CKV_K8S_15=image.pullPolicy defaults to IfNotPresent so locally loaded images (kind) work; release tags are immutable
{{- if not .Values.imageDigest }}
checkov.io/skip2: CKV_K8S_43=the image is referenced by tag unless imageDigest is set; kind and air-gapped clusters load it locally, where no registry digest exists
{{- end }}
{{- end }}

{{/* The checks each function fails or passes against the topics' partition count, and the
scorer's grace period against its longest wait; call with (dict "ctx" $ "component" name "f"
its values). */}}
{{- define "betting.functionChecks" -}}
{{- $partitions := int .ctx.Values.topics.partitions }}
{{- $a := .f.autoscaling }}
{{- if gt (int $a.minReplicas) (int $a.maxReplicas) }}
{{- fail (printf "functions.%s.autoscaling: minReplicas is above maxReplicas" .component) }}
{{- end }}
{{- if or (gt (int $a.maxReplicas) $partitions) (gt (int .f.replicas) $partitions) }}
{{- fail (printf "functions.%s: replicas and autoscaling.maxReplicas must not exceed topics.partitions (%d): a consumer beyond the partition count gets none and sits idle" .component $partitions) }}
{{- end }}
{{- if eq .component "bet-scorer" }}
{{- $wait := index .ctx.Values.extraEnv "BETTING_SCORER_WAIT_TIMEOUT_S" | default 120 | float64 }}
{{- if le (float64 .f.terminationGracePeriodSeconds) (addf $wait 10) }}
{{- fail (printf "functions.bet-scorer.terminationGracePeriodSeconds must exceed its wait for the event writer (BETTING_SCORER_WAIT_TIMEOUT_S, %v s) by 10 s or more, or SIGKILL can cut the last checkpoint" $wait) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The bootstrap servers: kafka.brokers, else the dev Redpanda (k8s/dev-services) in the
release's own namespace. Fully qualified, because KEDA's operator connects from its namespace. */}}
{{- define "betting.kafkaBrokers" -}}
{{- .Values.kafka.brokers | default (printf "redpanda.%s.svc.cluster.local:9092" .Release.Namespace) }}
{{- end }}

{{/* Whether the clients authenticate with SASL ("true" or empty). */}}
{{- define "betting.kafkaSasl" -}}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol }}true{{ end }}
{{- end }}

{{/* Whether the clients speak TLS to the broker ("true" or empty). */}}
{{- define "betting.kafkaTls" -}}
{{- if hasSuffix "SSL" .Values.kafka.securityProtocol }}true{{ end }}
{{- end }}

{{/* Where the broker's CA certificate is mounted (kafka.tls.caSecret). */}}
{{- define "betting.kafkaCaDir" -}}
/etc/betting/kafka-ca
{{- end }}

{{/* The broker's settings, for the components that talk to it (betting.brokerClients): its
address, timeouts and security, the credentials from kafka.sasl.existingSecret (never in the
values), the CA file from the kafka.tls.caSecret volume (betting.kafkaVolumes). */}}
{{- define "betting.kafkaEnv" -}}
{{- $k := .Values.kafka }}
- name: BETTING_KAFKA_BROKERS
  value: {{ include "betting.kafkaBrokers" . | quote }}
- name: BETTING_KAFKA_SESSION_TIMEOUT_MS
  value: {{ $k.sessionTimeoutMs | quote }}
- name: BETTING_KAFKA_HEARTBEAT_INTERVAL_MS
  value: {{ $k.heartbeatIntervalMs | quote }}
- name: BETTING_KAFKA_MAX_POLL_INTERVAL_MS
  value: {{ $k.maxPollIntervalMs | int64 | quote }}
- name: BETTING_KAFKA_FETCH_WAIT_MAX_MS
  value: {{ $k.fetchWaitMaxMs | quote }}
- name: BETTING_CONSUMER_GROUP_SUFFIX
  value: {{ $k.consumerGroupSuffix | quote }}
- name: BETTING_KAFKA_SECURITY_PROTOCOL
  value: {{ $k.securityProtocol | quote }}
{{- if include "betting.kafkaSasl" . }}
{{- if not $k.sasl.existingSecret }}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.existingSecret (a Secret with the SASL username and password)" $k.securityProtocol) }}
{{- end }}
- name: BETTING_KAFKA_SASL_MECHANISM
  value: {{ $k.sasl.mechanism | quote }}
- name: BETTING_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $k.sasl.existingSecret }}
      key: {{ $k.sasl.usernameKey }}
- name: BETTING_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $k.sasl.existingSecret }}
      key: {{ $k.sasl.passwordKey }}
{{- end }}
{{- if $k.tls.caSecret }}
{{- if not (include "betting.kafkaTls" .) }}
{{- fail (printf "kafka.tls.caSecret is only used with TLS: set kafka.securityProtocol to SSL or SASL_SSL, not %s" $k.securityProtocol) }}
{{- end }}
- name: BETTING_KAFKA_CA_FILE
  value: {{ printf "%s/%s" (include "betting.kafkaCaDir" .) $k.tls.caKey | quote }}
{{- end }}
{{- end }}

{{/* The CA certificate's volume mount, for the broker's clients (empty without caSecret). */}}
{{- define "betting.kafkaVolumeMounts" -}}
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  mountPath: {{ include "betting.kafkaCaDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/* The CA certificate's volume: the one key of kafka.tls.caSecret, read-only. */}}
{{- define "betting.kafkaVolumes" -}}
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.tls.caSecret }}
    defaultMode: 0444
    items:
      - key: {{ .Values.kafka.tls.caKey }}
        path: {{ .Values.kafka.tls.caKey }}
{{- end }}
{{- end }}

{{/* The name of the KEDA TriggerAuthentication for the broker (templates/kafka-auth.yaml). */}}
{{- define "betting.kafkaTriggerAuth" -}}
{{ include "betting.fullname" . }}-kafka
{{- end }}

{{/* Whether KEDA needs a TriggerAuthentication: SASL or a private CA ("true" or empty). */}}
{{- define "betting.kafkaNeedsTriggerAuth" -}}
{{- if or (include "betting.kafkaSasl" .) .Values.kafka.tls.caSecret }}true{{ end }}
{{- end }}

{{/* The components that talk to the broker, as a JSON list: the line provider (the one
producer of the servers), the topics Job and every function. Never the bet maker. */}}
{{- define "betting.brokerClients" -}}
{{- concat (list "line-provider" "topics") (keys .Values.functions | sortAlpha) | toJson }}
{{- end }}

{{/* What the Ingress routes to each server, as JSON: {"server": "path prefix"}. */}}
{{- define "betting.serverPaths" -}}
{{- dict "line-provider" "/events" "bet-maker" "/bets" | toJson }}
{{- end }}

{{/* A component's PodDisruptionBudget; call with (dict "ctx" $ "component" name "fullname"
fullname "budget" its podDisruptionBudget values). */}}
{{- define "betting.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .fullname }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "betting.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .budget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "betting.selectorLabels" . | nindent 6 }}
{{- end }}

{{/* A CPU HorizontalPodAutoscaler of a component's Deployment; call with (dict "ctx" $
"component" name "fullname" fullname "autoscaling" its autoscaling values). */}}
{{- define "betting.cpuHpa" -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ .fullname }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "betting.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ .fullname }}
  minReplicas: {{ .autoscaling.minReplicas }}
  maxReplicas: {{ .autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
