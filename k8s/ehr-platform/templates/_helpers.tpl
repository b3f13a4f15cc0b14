{{- define "ehr.name" -}}{{ .Release.Name }}{{- end -}}

{{- define "ehr.labels" -}}
app.kubernetes.io/name: ehr-platform
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "ehr.selector" -}}
app.kubernetes.io/name: ehr-platform
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ehr.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag }}{{- end -}}

{{- define "ehr.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "ehr.secretEnv" -}}
- name: EHR_DB__URL
  valueFrom: {secretKeyRef: {name: {{ .Values.secrets.existingSecret }}, key: db-url}}
- name: EHR_REDIS__URL
  valueFrom: {secretKeyRef: {name: {{ .Values.secrets.existingSecret }}, key: redis-url}}
- name: EHR_SECURITY__SECRET_KEY
  valueFrom: {secretKeyRef: {name: {{ .Values.secrets.existingSecret }}, key: secret-key}}
- name: EHR_AUTH__ENCRYPTION_KEYS
  valueFrom: {secretKeyRef: {name: {{ .Values.secrets.existingSecret }}, key: encryption-keys}}
{{- end -}}

{{- define "ehr.appEnv" -}}
- name: EHR_ENV
  value: production
- name: EHR_FHIR__BASE_URL
  value: http://{{ .Release.Name }}-hapi:8080/fhir
- name: EHR_FHIR_CHANGES__NOTIFY_URL
  value: http://{{ .Release.Name }}-worker:9465/internal/fhir-notifications
- name: EHR_LOG__JSON_FORMAT
  value: "true"
- name: EHR_LOG__LEVEL
  value: {{ .Values.api.logLevel | quote }}
{{ include "ehr.secretEnv" . }}
{{- end -}}

{{/* Egress to Redis: the in-chart Redis by pod selector, an external one (redis.enabled false,
e.g. a managed Redis with TLS) by networkPolicy.redisCidr. */}}
{{- define "ehr.redisEgress" -}}
{{- if .Values.redis.enabled -}}
- to:
    - podSelector:
        matchLabels:
          {{- include "ehr.selector" (dict "root" . "component" "redis") | nindent 10 }}
  ports: [{port: 6379, protocol: TCP}]
{{- else -}}
- to: [{ipBlock: {cidr: {{ required "networkPolicy.redisCidr is required when redis.enabled is false" .Values.networkPolicy.redisCidr }}}}]
  ports: [{port: 6379, protocol: TCP}]
{{- end -}}
{{- end -}}
