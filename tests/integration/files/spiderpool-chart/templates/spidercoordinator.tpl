{{- if .Values.coordinator.enabled }}
# The real chart's post-install Job creates this object once; a post-install hook resource
# behaves the same way: created on install, left alone by upgrades.
apiVersion: spiderpool.spidernet.io/v2beta1
kind: SpiderCoordinator
metadata:
  name: {{ .Values.coordinator.name }}
  annotations:
    helm.sh/hook: post-install
spec:
  mode: {{ .Values.coordinator.mode }}
  podCIDRType: {{ .Values.coordinator.podCIDRType }}
  hijackCIDR: {{- toYaml .Values.coordinator.hijackCIDR | nindent 4 }}
{{- end }}
