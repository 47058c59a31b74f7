package main

import (
	"strconv"
	"strings"
)

// normalizeDurationArgs accepts mainline's plain numbers of seconds ("300", "0.5") as well as Go
// durations ("5m") for the duration flags.
func normalizeDurationArgs(args []string, names ...string) []string {
	out := make([]string, len(args))
	copy(out, args)
	isDur := func(s string) bool {
		s = strings.TrimLeft(s, "-")
		s = strings.ReplaceAll(s, "_", "-")
		for _, n := range names {
			if s == n {
				return true
			}
		}
		return false
	}
	for i := 0; i < len(out); i++ {
		a := out[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		if name, val, ok := strings.Cut(a, "="); ok && isDur(name) {
			if _, err := strconv.ParseFloat(val, 64); err == nil {
				out[i] = name + "=" + val + "s"
			}
			continue
		}
		if isDur(a) && i+1 < len(out) {
			if _, err := strconv.ParseFloat(out[i+1], 64); err == nil {
				out[i+1] += "s"
			}
			i++
		}
	}
	return out
}
