// Package processnode is the test and development harness that stands in for KubeEdge's edged on
// one machine: it runs the containers of the pods bound to a node as local processes. It is never
// shipped as a product component.
//
// This file set holds the pure part: resolving a container's command, arguments and environment
// as the kubelet would (fieldRef, secretKeyRef, configMapKeyRef, envFrom and $(VAR) expansion) and
// mapping images to local binaries through a documented table.
package processnode
