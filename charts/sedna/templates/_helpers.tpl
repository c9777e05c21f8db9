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

{{/* Hand-written. lc.gmAddress, the host:port the LCs dial GM at, checked as install.sh checks
SEDNA_GM_ADDRESS: a DNS name, an IPv4 address or a bracketed IPv6 address, and a port; no scheme. */}}
{{- define "sedna.gmAddress" -}}
{{- $addr := toString .Values.lc.gmAddress -}}
{{- if not (regexMatch "^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]+\\]):[0-9]{1,5}$" $addr) -}}
{{- fail (printf "lc.gmAddress=%q: want host:port (a DNS name, an IPv4 address or [IPv6]) without a scheme" $addr) -}}
{{- end -}}
{{- $addr -}}
{{- end -}}

{{/* Hand-written. The host of lc.gmAddress, an IPv6 address without its brackets. */}}
{{- define "sedna.gmHost" -}}
{{- $addr := include "sedna.gmAddress" . -}}
{{- regexReplaceAll "^\\[?(.*?)\\]?:[0-9]+$" $addr "${1}" -}}
{{- end -}}
