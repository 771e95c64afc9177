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
{{- if .Values.rootLoginProfiles.enabled }}
- apiGroups: ["iam.loginprofile.dev"]
  resources: ["rootloginprofiles"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["iam.loginprofile.dev"]
  resources: ["rootloginprofiles/status"]
  verbs: ["get", "patch"]
{{- end }}
{{- end -}}

{{- /* Secrets: only in the watched namespaces (or everywhere without watchNamespaces); with generated passwords also create, and patch to replace one before it expires (only Secrets labelled generated-for). */ -}}
{{- define "lpo.secretRules" -}}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"{{ if .Values.generatedPasswords.enabled }}, "create", "patch"{{ end }}]
{{- end -}}

{{- /* What kube-score and checkov (tests/chart.rs runs both) would flag on
this Deployment and why each is as it is; each suppression follows the value
that would make it unnecessary. */ -}}
{{- define "lpo.lintSuppressions" -}}
{{- $kubeScore := list -}}
{{- /* CPU limits throttle reconciles and Lease renewals when a burst of
changes arrives; the memory limit is set, CPU is left to the request. */ -}}
{{- $kubeScore = append $kubeScore "container-resources" -}}
{{- /* The image is pinned by tag or digest: Always would make every restart
depend on the registry for nothing. */ -}}
{{- $kubeScore = append $kubeScore "container-image-pull-policy" -}}
{{- if not .Values.networkPolicy.enabled -}}
{{- /* Opt-in (networkPolicy.enabled): the API server's address is the
cluster's to know, and a policy without an enforcing CNI is a false promise. */ -}}
{{- $kubeScore = append $kubeScore "pod-networkpolicy" -}}
{{- end -}}
{{- if lt (int .Values.replicaCount) 2 -}}
{{- /* One replica is one writer, stopped before the next starts (Recreate);
replicaCount > 1 with leaderElection.enabled runs standbys. */ -}}
{{- $kubeScore = concat $kubeScore (list "deployment-replicas" "deployment-strategy") -}}
{{- end -}}
kube-score/ignore: {{ join "," $kubeScore | quote }}
checkov.io/skip1: CKV_K8S_11=CPU limits throttle reconciles and Lease renewals; memory is limited
checkov.io/skip2: CKV_K8S_15=the image is pinned by tag or digest; Always adds a registry dependency to every restart
checkov.io/skip3: CKV_K8S_38=the operator talks to the API server with its ServiceAccount token
{{- if not .Values.image.digest }}
checkov.io/skip4: CKV_K8S_43=set image.digest to install by digest (docs/install.md)
{{- end }}
{{- if not .Values.networkPolicy.enabled }}
checkov.io/skip5: CKV2_K8S_6=opt-in with networkPolicy.enabled
{{- end }}
{{- end -}}
