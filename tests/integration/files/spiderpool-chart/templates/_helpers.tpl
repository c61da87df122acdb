{{- define "spiderpool.image" -}}
{{- $registry := .global.imageRegistryOverride | default .image.registry -}}
{{- printf "%s/%s:%s" $registry .image.repository (.image.tag | default .appVersion) -}}
{{- end -}}
