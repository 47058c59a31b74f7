package wsapi

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The frame reader: RFC 6455 frames from a client, parsed from the bytes a read found, so
// that an idle connection holds no reader, no buffer and no goroutine (see poll_linux.go).
// gorilla/websocket still answers the handshake; its reader blocks on the socket, which is
// what this replaces. It accepts and refuses what gorilla's reader did, with the limit on a
// message's size checked from the frame headers before a payload is read (FuzzFrames
// compares the two).

// Opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// WebSocket close codes (RFC 6455 §7.4.1) the tracker sends or checks.
const (
	closeNormal         = 1000
	closeGoingAway      = 1001
	closeProtocolError  = 1002
	closeNoStatus       = 1005
	closePolicyViolated = 1008
	closeTooBig         = 1009
)

// maxControlPayload bounds a control frame's payload (RFC 6455 §5.5).
const maxControlPayload = 125

// errTooLarge: a message over the size limit (close 1009).
var errTooLarge = errors.New("message too large")

// protocolError is a frame that breaks RFC 6455 (close 1002 with its text).
type protocolError string

func (e protocolError) Error() string { return "websocket: " + string(e) }

// frame is one complete frame; its payload is unmasked in place in the bytes read.
type frame struct {
	fin     bool
	op      byte
	payload []byte
}

// frameState is what a connection's frame reader keeps between frames: whether a
// fragmented data message is in progress, and its length so far.
type frameState struct {
	inMessage bool  // a data frame without FIN was read; continuations follow
	op        byte  // the opcode of the last data message begun (text or binary)
	size      int64 // the payload length of that message so far
}

// next parses the frame at the start of b. n is the frame's length in b; n == 0 (and no
// error) means b holds no complete frame yet. An error ends the connection: a protocol
// error, or errTooLarge when the data message the frame belongs to would exceed limit
// bytes (checked as soon as the frame's header is complete, before its payload arrives).
// Control frames may come between the fragments of a message.
func (st *frameState) next(b []byte, limit int64) (f frame, n int, err error) {
	if len(b) < 2 {
		return f, 0, nil
	}
	f.fin = b[0]&0x80 != 0
	f.op = b[0] & 0x0f
	masked := b[1]&0x80 != 0
	length := int64(b[1] & 0x7f)
	var errs []string
	if b[0]&0x40 != 0 {
		errs = append(errs, "RSV1 set")
	}
	if b[0]&0x20 != 0 {
		errs = append(errs, "RSV2 set")
	}
	if b[0]&0x10 != 0 {
		errs = append(errs, "RSV3 set")
	}
	switch f.op {
	case opClose, opPing, opPong:
		if length > maxControlPayload {
			errs = append(errs, "len > 125 for control")
		}
		if !f.fin {
			errs = append(errs, "FIN not set on control")
		}
	case opText, opBinary:
		if st.inMessage {
			errs = append(errs, "data before FIN")
		}
	case opContinuation:
		if !st.inMessage {
			errs = append(errs, "continuation after FIN")
		}
	default:
		errs = append(errs, "bad opcode "+strconv.Itoa(int(f.op)))
	}
	if !masked {
		errs = append(errs, "bad MASK")
	}
	if len(errs) > 0 {
		return f, 0, protocolError(strings.Join(errs, ", "))
	}
	h := 2
	switch length {
	case 126:
		if len(b) < 4 {
			return f, 0, nil
		}
		length, h = int64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return f, 0, nil
		}
		length, h = int64(binary.BigEndian.Uint64(b[2:])), 10
		if length < 0 {
			return f, 0, errTooLarge
		}
	}
	if len(b) < h+4 {
		return f, 0, nil
	}
	var key [4]byte
	copy(key[:], b[h:])
	h += 4
	data := f.op == opText || f.op == opBinary || f.op == opContinuation
	if data {
		size := length
		if f.op == opContinuation {
			size += st.size
		}
		if size < 0 || size > limit {
			return f, 0, errTooLarge
		}
	}
	if int64(len(b)-h) < length {
		return f, 0, nil
	}
	n = h + int(length)
	f.payload = b[h:n]
	mask(key, f.payload)
	if data {
		if f.op != opContinuation {
			st.op, st.size = f.op, 0
		}
		st.size += length
		st.inMessage = !f.fin
	}
	return f, n, nil
}

// mask applies (or removes) a frame's masking key.
func mask(key [4]byte, b []byte) {
	k := binary.LittleEndian.Uint32(key[:])
	k64 := uint64(k)<<32 | uint64(k)
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= key[i&3]
	}
}

// closePayload reads a close frame's payload as gorilla did: no code is 1005; a code that
// may not be sent, or a reason that is not UTF-8, is a protocol error.
func closePayload(p []byte) (code int, text string, err error) {
	if len(p) < 2 {
		return closeNoStatus, "", nil
	}
	code = int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return 0, "", protocolError("bad close code " + strconv.Itoa(code))
	}
	if !utf8.Valid(p[2:]) {
		return 0, "", protocolError("invalid utf8 payload in close frame")
	}
	return code, string(p[2:]), nil
}

// validCloseCode reports whether a peer may send code (the IANA registry's codes in use,
// and 3000–4999 for libraries and applications).
func validCloseCode(code int) bool {
	switch code {
	case 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013:
		return true
	}
	return code >= 3000 && code <= 4999
}

// appendFrameHeader appends the header of an unmasked (server) frame with FIN set.
func appendFrameHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return b
}

// closeMessage is a close frame's payload: the code and a reason (cut to fit a control
// frame); none for 1005, as gorilla's FormatCloseMessage.
func closeMessage(code int, text string) []byte {
	if code == closeNoStatus {
		return nil
	}
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(text)), uint16(code))
	b = append(b, text...)
	if len(b) > maxControlPayload {
		b = b[:maxControlPayload]
	}
	return b
}
