package storage

import (
	"errors"
	"reflect"
	"testing"
)

func TestLayoutSpans(t *testing.T) {
	l, err := NewLayout([]File{
		{Path: []string{"a"}, Length: 10},
		{Path: []string{"empty"}, Length: 0},
		{Path: []string{"b"}, Length: 25},
		{Path: []string{".pad", "1"}, Length: 1, Pad: true},
		{Path: []string{"c"}, Length: 4},
	}, 16)
	if err != nil {
		t.Fatal(err)
	}
	if l.Total != 40 || l.NumPieces() != 3 || l.PieceSize(2) != 8 {
		t.Fatalf("total %d pieces %d last %d", l.Total, l.NumPieces(), l.PieceSize(2))
	}
	for _, tc := range []struct {
		piece int
		want  []Span
	}{
		{0, []Span{{0, 0, 10}, {2, 0, 6}}},
		{1, []Span{{2, 6, 16}}},
		{2, []Span{{2, 22, 3}, {3, 0, 1}, {4, 0, 4}}},
	} {
		if got := l.PieceSpans(nil, tc.piece); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("piece %d spans %v, want %v", tc.piece, got, tc.want)
		}
	}
	for f, want := range [][2]int{{0, 1}, {0, 0}, {0, 3}, {2, 3}, {2, 3}} {
		if first, end := l.FilePieces(f); first != want[0] || end != want[1] {
			t.Errorf("file %d pieces [%d,%d), want %v", f, first, end, want)
		}
	}
	if got := l.Spans(nil, 38, 100); !reflect.DeepEqual(got, []Span{{4, 2, 2}}) {
		t.Errorf("spans past the end: %v", got)
	}
	if got := l.Spans(nil, 40, 1); got != nil {
		t.Errorf("spans at the end: %v", got)
	}
}

func TestNewLayoutRejects(t *testing.T) {
	for _, tc := range []struct {
		files []File
		plen  int64
	}{
		{[]File{{Length: 1}}, 0},
		{[]File{{Length: -1}}, 16},
		{[]File{{Length: MaxTotal}, {Length: 1}}, 16},
	} {
		if _, err := NewLayout(tc.files, tc.plen); !errors.Is(err, ErrBadLayout) {
			t.Errorf("NewLayout(%v, %d) = %v", tc.files, tc.plen, err)
		}
	}
}
