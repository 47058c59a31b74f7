//go:build !amd64 || purego

package metafile

// have2Lane is false where there is no two-message SHA-1 block function.
var have2Lane = false

func sha1Block2(h1, h2 *[5]uint32, p1, p2 *byte, n int) {
	panic("metafile: sha1Block2 without SHA extensions")
}
