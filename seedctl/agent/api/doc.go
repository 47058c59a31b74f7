// Package api is the control API of the seedctl agent: a small JSON-over-HTTP interface that
// serves an [agent.Controller] (status, list, add, remove, pause, resume, verify, rescan) and the
// [Client] the seedctl CLI uses to talk to it.
//
// The API is not part of the BitTorrent protocol and implements no BEP; torrents are named by
// their BEP 3 info-hash (40 hex digits) in paths.
//
// It is served on a unix socket by default ([ListenUnix]: mode 0660 from the moment it appears,
// a stale socket left by a crashed agent replaced only after checking that nothing answers on it)
// or, when asked, on a loopback TCP address ([ListenTCP]) behind [Guard], which demands a bearer
// token and a Host header naming the listener itself, so that a web page cannot reach the API
// through DNS rebinding. Errors are JSON objects {"error": "..."} with a 4xx status for the
// caller's mistakes and 500 otherwise; the [Client] turns them back into errors that wrap
// [agent.ErrUnknown], [agent.ErrInvalid] and [agent.ErrConflict]. README.md in this directory has
// the endpoint table.
package api
