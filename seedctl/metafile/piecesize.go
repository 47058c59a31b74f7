package metafile

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Piece-size bounds for torrents we make. Every client handles 16 KiB to 16 MiB; BEP 52
// requires a power of two of at least 16 KiB.
const (
	MinPieceLength = 16 << 10
	MaxPieceLength = 16 << 20
	// TargetMaxPieces is the piece count the automatic rule stays under (when it can).
	TargetMaxPieces = 2000
)

// PieceSizeRule says how AutoPieceLength chooses, for --help and docs/seedctl.md.
const PieceSizeRule = "auto: the smallest power of two from 16 KiB to 16 MiB that cuts the payload into at most 2,000 pieces " +
	"(so a large payload gets 1,000-2,000 pieces; above ~32 GB pieces stay at 16 MiB and the count grows)"

// AutoPieceLength returns the piece length for a payload of total bytes: the smallest power of
// two in [MinPieceLength, MaxPieceLength] giving at most TargetMaxPieces pieces.
func AutoPieceLength(total int64) int64 {
	p := int64(MinPieceLength)
	for p < MaxPieceLength && (total+p-1)/p > TargetMaxPieces {
		p <<= 1
	}
	return p
}

// ParsePieceLength parses a --piece-size value: "auto" (returns 0), a byte count, or a number
// with a binary unit (K, KiB, M, MiB; case-insensitive). The result must be a power of two
// between 16 KiB and 16 MiB.
func ParsePieceLength(s string) (int64, error) {
	if t := strings.TrimSpace(strings.ToLower(s)); t == "" || t == "auto" {
		return 0, nil
	}
	n, err := ParseSize(s)
	if err != nil || n < MinPieceLength || n > MaxPieceLength || bits.OnesCount64(uint64(n)) != 1 {
		return 0, fmt.Errorf("piece size %q: want auto, or a power of two from 16KiB to 16MiB", s)
	}
	return n, nil
}

// ParseSize parses a byte count, or a number with a binary unit (K, KiB, M, MiB, G, GiB;
// case-insensitive; KB and MB are read as KiB and MiB), of at most 1 TiB.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"kb", 1 << 10}, {"mb", 1 << 20}, {"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t = strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			mult = u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("size %q: want a byte count, or a number with a unit (KiB, MiB, GiB), up to 1TiB", s)
	}
	return n * mult, nil
}

// FormatSize renders n bytes with a binary unit ("1.5 GiB", "256 KiB", "17 B").
func FormatSize(n int64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	i := -1
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %ciB", int64(v), units[i])
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}
