apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Values.spiderpoolController.name }}
  namespace: {{ .Release.Namespace }}
  labels:
    app.kubernetes.io/component: {{ .Values.spiderpoolController.name }}
spec:
  replicas: {{ .Values.spiderpoolController.replicas }}
  selector:
    matchLabels:
      app.kubernetes.io/component: {{ .Values.spiderpoolController.name }}
  template:
    metadata:
      labels:
        app.kubernetes.io/component: {{ .Values.spiderpoolController.name }}
    spec:
      hostNetwork: true
      containers:
        - name: spiderpool-controller
          image: {{ include "spiderpool.image" (dict "global" .Values.global "image" .Values.spiderpoolController.image "appVersion" .Chart.AppVersion) }}
          ports:
            - {name: webhook, containerPort: 5722}
