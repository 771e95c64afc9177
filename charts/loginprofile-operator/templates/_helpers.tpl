{{- define "lpo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lpo.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "lpo.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "lpo.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "lpo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "lpo.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- /* The image by digest when one is given, else by tag (default: appVersion). */ -}}
{{- define "lpo.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "lpo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lpo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "lpo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "lpo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The rules on LoginProfiles, Secrets and Events in a watched namespace (or cluster-wide). */}}
{{- /* LoginProfiles and their Events: granted cluster-wide even with
watchNamespaces, because a RoleBinding in a namespace being deleted goes
before the LoginProfiles whose finalizers need these rights. */ -}}
{{- define "lpo.profileRules" -}}
- apiGroups: ["iam.loginprofile.dev"]
  resources: ["loginprofiles"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["iam.loginprofile.dev"]
  resources: ["loginprofiles/status"]
  verbs: ["get", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["iam.loginprofile.dev"]
  resources: ["iamaccounts"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["iam.loginprofile.dev"]
  resources: ["iamaccounts/status"]
  verbs: ["get", "patch"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
{{- end -}}

{{- /* Secrets: only in the watched namespaces (or everywhere without watchNamespaces). */ -}}
{{- define "lpo.secretRules" -}}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"{{ if .Values.generatedPasswords.enabled }}, "create"{{ end }}]
{{- end -}}
