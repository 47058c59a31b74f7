//go:build amd64 && !purego

package metafile

import "golang.org/x/sys/cpu"

//go:generate python3 gensha1x2.py

// sha1Block2 is SHA-1's block function over two messages at once (sha1x2_amd64.s).
//
//go:noescape
func sha1Block2(h1, h2 *[5]uint32, p1, p2 *byte, n int)

func cpuid7ebx() uint32

func cpuidMaxLeaf() uint32

// have2Lane says whether sha1Block2 can run here: SHA extensions (CPUID.7.0:EBX bit 29) with
// SSSE3 and SSE4.1.
var have2Lane = cpu.X86.HasSSSE3 && cpu.X86.HasSSE41 && cpuidMaxLeaf() >= 7 && cpuid7ebx()&(1<<29) != 0
