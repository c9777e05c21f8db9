{{/* Hand-written. The image of one of Sedna's components: (list $ "sedna-gm").
<repository>/<name>@<digest> when image.digests has the name, else <repository>/<name>:<tag>. */}}
{{- define "sedna.image" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $digest := get ($root.Values.image.digests | default dict) $name -}}
{{- if $digest -}}
{{- printf "%s/%s@%s" $root.Values.image.repository $name $digest -}}
{{- else -}}
{{- printf "%s/%s:%s" $root.Values.image.repository $name $root.Values.image.tag -}}
{{- end -}}
{{- end -}}
