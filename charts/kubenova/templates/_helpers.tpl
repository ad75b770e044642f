{{/* Labels on every object: kustomize's part-of, and Helm's usual ones. */}}
{{- define "kubenova.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: kubenova
{{- end }}

{{/*
The objects of one file of manifests/ (files/ holds links to them, so the chart and the
kustomization cannot drift apart): in the release namespace instead of kubenova-system,
with the chart's labels, and the system-owner binding's subjects from the values.
Called with (list $ "files/<name>.yaml").
*/}}
{{- define "kubenova.objects" -}}
{{- $root := index . 0 -}}
{{- $text := $root.Files.Get (index . 1) | replace "kubenova-system" $root.Release.Namespace -}}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" $text -1 }}
{{- $obj := fromYaml $doc }}
{{- if hasKey $obj "kind" }}
{{- $labels := merge (include "kubenova.labels" $root | fromYaml) ($obj.metadata.labels | default dict) }}
{{- $_ := set $obj.metadata "labels" $labels }}
{{- if and (eq $obj.kind "ClusterRoleBinding") (eq $obj.metadata.name "kubenova:system-owner") }}
{{- $subjects := list }}
{{- range $group := $root.Values.systemOwnerGroups }}
{{- $subjects = append $subjects (dict "apiGroup" "rbac.authorization.k8s.io" "kind" "Group" "name" $group) }}
{{- end }}
{{- $_ := set $obj "subjects" $subjects }}
{{- end }}
---
{{ toYaml $obj }}
{{- end }}
{{- end }}
{{- end }}
