// Package benc is an append-style bencode writer (BEP 3) for hot paths: each function appends
// one value to a byte slice the caller owns and reuses, so a tracker reply is built without
// allocating. Dictionary keys must be appended in sorted order by the caller. Reading and
// cold-path encoding use github.com/anacrolix/torrent/bencode.
package benc

import "strconv"

// Int appends i as a bencoded integer: i<digits>e.
func Int(dst []byte, i int64) []byte {
	dst = append(dst, 'i')
	dst = strconv.AppendInt(dst, i, 10)
	return append(dst, 'e')
}

// Uint appends u as a bencoded integer.
func Uint(dst []byte, u uint64) []byte {
	dst = append(dst, 'i')
	dst = strconv.AppendUint(dst, u, 10)
	return append(dst, 'e')
}

// Bytes appends b as a bencoded string: <length>:<bytes>.
func Bytes(dst, b []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, ':')
	return append(dst, b...)
}

// String appends s as a bencoded string.
func String(dst []byte, s string) []byte {
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, ':')
	return append(dst, s...)
}

// KeyInt appends a dictionary entry whose value is an integer.
func KeyInt(dst []byte, key string, i int64) []byte {
	return Int(String(dst, key), i)
}

// KeyBytes appends a dictionary entry whose value is a string.
func KeyBytes(dst []byte, key string, b []byte) []byte {
	return Bytes(String(dst, key), b)
}

// Failure appends a whole reply {"failure reason": reason}.
func Failure(dst []byte, reason string) []byte {
	dst = append(dst, 'd')
	dst = String(dst, "failure reason")
	dst = String(dst, reason)
	return append(dst, 'e')
}

// FailureRetry appends a failure reply with BEP 31's "retry in" (minutes before the client
// should announce again).
func FailureRetry(dst []byte, reason string, minutes int) []byte {
	dst = append(dst, 'd')
	dst = String(dst, "failure reason")
	dst = String(dst, reason)
	dst = String(dst, "retry in")
	dst = Int(dst, int64(minutes))
	return append(dst, 'e')
}
