package wire

import (
	"errors"
	"testing"
)

func TestBitfield(t *testing.T) {
	for _, n := range []int{1, 7, 8, 9, 20, 64} {
		bf := NewBitfield(n)
		if bf.Len() != n || len(bf.Bytes()) != BitfieldLen(n) || bf.Count() != 0 || bf.Full() {
			t.Fatalf("n=%d: new bitfield %+v", n, bf)
		}
		for i := 0; i < n; i += 3 {
			if !bf.Set(i) || bf.Set(i) {
				t.Fatalf("n=%d: Set(%d) twice", n, i)
			}
		}
		for i := range n {
			if bf.Has(i) != (i%3 == 0) {
				t.Fatalf("n=%d: Has(%d) = %v", n, i, bf.Has(i))
			}
		}
		if want := (n + 2) / 3; bf.Count() != want {
			t.Fatalf("n=%d: Count %d, want %d", n, bf.Count(), want)
		}
		if err := CheckBitfield(bf.Bytes(), n); err != nil {
			t.Fatalf("n=%d: own bytes fail the check: %v", n, err)
		}
		if !bf.Clear(0) || bf.Clear(0) || bf.Has(0) {
			t.Fatalf("n=%d: Clear(0)", n)
		}
		bf.SetAll()
		if !bf.Full() || bf.Count() != n || CheckBitfield(bf.Bytes(), n) != nil {
			t.Fatalf("n=%d: SetAll: count %d, bytes % x", n, bf.Count(), bf.Bytes())
		}
		p, err := ParseBitfield(bf.Bytes(), n)
		if err != nil || !p.Full() {
			t.Fatalf("n=%d: ParseBitfield of a full set: %v", n, err)
		}
		bf.ClearAll()
		if bf.Count() != 0 || bf.Has(n-1) {
			t.Fatalf("n=%d: ClearAll", n)
		}
	}
}

func TestBitfieldBitOrder(t *testing.T) {
	bf := NewBitfield(10)
	bf.Set(0)
	bf.Set(9)
	if b := bf.Bytes(); b[0] != 0x80 || b[1] != 0x40 {
		t.Fatalf("bytes % x, want 80 40 (BEP 3: high bit first)", b)
	}
}

func TestCheckBitfield(t *testing.T) {
	tests := []struct {
		b  []byte
		n  int
		ok bool
	}{
		{[]byte{0xff}, 8, true},
		{[]byte{0xff, 0x80}, 9, true},
		{[]byte{0xff, 0xc0}, 9, false}, // spare bit
		{[]byte{0xff, 0x01}, 9, false},
		{[]byte{0xff}, 9, false},       // short
		{[]byte{0xff, 0, 0}, 9, false}, // long
		{nil, 0, true},
		{[]byte{0}, 0, false},
	}
	for _, tc := range tests {
		err := CheckBitfield(tc.b, tc.n)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrBadBitfield) {
			t.Errorf("CheckBitfield(% x, %d) = %v", tc.b, tc.n, err)
		}
	}
}

func TestBitfieldReplace(t *testing.T) {
	bf := NewBitfield(12)
	bf.Set(1)
	if err := bf.Replace([]byte{0xf0, 0x10}); err != nil {
		t.Fatal(err)
	}
	if bf.Count() != 5 || bf.Has(5) || !bf.Has(11) {
		t.Fatalf("after Replace: count %d bytes % x", bf.Count(), bf.Bytes())
	}
	if err := bf.Replace([]byte{0xf0, 0x11}); !errors.Is(err, ErrBadBitfield) {
		t.Fatalf("Replace with a spare bit: %v", err)
	}
	if bf.Count() != 5 {
		t.Fatal("a refused Replace changed the set")
	}
}

func TestBitfieldPanicsOutOfRange(t *testing.T) {
	bf := NewBitfield(8)
	for _, i := range []int{-1, 8} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Has(%d) did not panic", i)
				}
			}()
			bf.Has(i)
		}()
	}
}
