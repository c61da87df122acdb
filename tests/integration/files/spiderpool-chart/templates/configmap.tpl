apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Values.global.configName }}
  namespace: {{ .Release.Namespace }}
data:
  clusterNetwork: {{ .Values.multus.multusCNI.defaultCniCRName | quote }}
  conf.yml: |
    ipamUnixSocketPath: /var/run/spidernet/spiderpool.sock
    enableIPv4: {{ .Values.ipam.enableIPv4 }}
    enableIPv6: {{ .Values.ipam.enableIPv6 }}
    enableStatefulSet: {{ .Values.ipam.enableStatefulSet }}
    clusterDefaultIPv4IPPool: []
    clusterDefaultIPv6IPPool: []
