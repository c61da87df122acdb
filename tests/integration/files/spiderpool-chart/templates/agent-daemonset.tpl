apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {{ .Values.spiderpoolAgent.name }}
  namespace: {{ .Release.Namespace }}
  labels:
    app.kubernetes.io/component: {{ .Values.spiderpoolAgent.name }}
spec:
  selector:
    matchLabels:
      app.kubernetes.io/component: {{ .Values.spiderpoolAgent.name }}
  template:
    metadata:
      labels:
        app.kubernetes.io/component: {{ .Values.spiderpoolAgent.name }}
    spec:
      hostNetwork: true
      tolerations: {{- toYaml .Values.spiderpoolAgent.tolerations | nindent 8 }}
      initContainers:
        {{- if .Values.plugins.installCNI }}
        - name: install-cni
          image: {{ include "spiderpool.image" (dict "global" .Values.global "image" .Values.plugins.image "appVersion" .Chart.AppVersion) }}
          command: [/bin/sh, -c, "cp -f /usr/bin/cni/* /host{{ .Values.global.cniBinHostPath }}/"]
        {{- end }}
        {{- if .Values.multus.multusCNI.install }}
        - name: install-multus
          image: {{ include "spiderpool.image" (dict "global" .Values.global "image" .Values.multus.multusCNI.image "appVersion" .Chart.AppVersion) }}
          command: [/install_multus]
        {{- end }}
      containers:
        - name: spiderpool-agent
          image: {{ include "spiderpool.image" (dict "global" .Values.global "image" .Values.spiderpoolAgent.image "appVersion" .Chart.AppVersion) }}
          ports:
            - {name: http, containerPort: 5710}
