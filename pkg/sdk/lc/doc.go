// Package lc reports worker state to the local controller (LC) with upstream
// Sedna's wire format: a JSON body POSTed to
// {LC_SERVER}/sedna/workers/{worker}/info. A report is accepted when the LC
// answers HTTP 200 with {"Status":200,...}; the LC answers reports it drops
// with HTTP 200 too (upstream's library gives up for good on anything else),
// so the outcome is read from the body. When the job's worker token is set
// (SEDNA_WORKER_TOKEN), every request carries it as a bearer token, which is
// how the LC tells the job's workers from anything else on the node network.
//
// It owns the message shape and the retry policy; it does not decide what to
// report or when (the feature packages do) and never talks to the API server.
package lc
