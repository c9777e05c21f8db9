// Package lc reports worker state to the local controller (LC) with upstream
// Sedna's wire format: a JSON body POSTed to
// {LC_SERVER}/sedna/workers/{worker}/info, accepted only with HTTP 200.
//
// It owns the message shape and the retry policy; it does not decide what to
// report or when (the feature packages do) and never talks to the API server.
package lc
