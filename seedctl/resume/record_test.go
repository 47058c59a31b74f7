package resume

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"

	"github.com/webswarm/webswarm/seedctl/storage"
)

func sampleRecord() *Record {
	r := &Record{
		Have:       []byte{0xff, 0x80},
		Files:      []storage.FileStamp{{Size: 10, ModTime: 1_700_000_000_123_456_789}, {}, {Size: -1}},
		Clean:      true,
		Uploaded:   1 << 40,
		Downloaded: 12345,
	}
	copy(r.InfoHash[:], "0123456789abcdefghij")
	return r
}

func TestRecordRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.resume")
	for _, r := range []*Record{sampleRecord(), {Have: []byte{}, Files: []storage.FileStamp{}}} {
		if err := r.Save(path); err != nil {
			t.Fatal(err)
		}
		got, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("Load = %+v, want %+v", got, r)
		}
	}
	// Nothing but the record is left in the directory.
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("%d entries beside the record", len(ents)-1)
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none"))
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Load(missing) = %v", err)
	}
}

// A directory or an oversized file where the record should be is a corrupt record (moved
// aside by the job), not a missing one.
func TestLoadNotARecordFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Load(directory) = %v, want ErrCorrupt", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, maxRecordSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Load(oversized) = %v, want ErrCorrupt", err)
	}
}

func TestLoadCorrupt(t *testing.T) {
	good, err := sampleRecord().encode()
	if err != nil {
		t.Fatal(err)
	}
	// edited re-encodes the record after edit; with sum the checksum is made right again, so
	// that only the edited field is wrong.
	edited := func(sum bool, edit func(d *diskRecord)) []byte {
		var d diskRecord
		if err := bencode.Unmarshal(good, &d); err != nil {
			t.Fatal(err)
		}
		edit(&d)
		d.Sum = nil
		if sum {
			body, err := bencode.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			s := sha1.Sum(body)
			d.Sum = s[:]
		}
		b, err := bencode.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	withSum := func(edit func(d *diskRecord)) []byte { return edited(true, edit) }
	for name, data := range map[string][]byte{
		"empty":          {},
		"truncated":      good[:len(good)/2],
		"trailing bytes": append(bytes.Clone(good), 'x'),
		"not a dict":     []byte("i42e"),
		"garbage":        []byte("\x00\x01\x02 resume"),
		"byte changed":   bytes.Replace(good, []byte("i12345e"), []byte("i12346e"), 1),
		"no checksum":    edited(false, func(d *diskRecord) {}),
		"version 2":      withSum(func(d *diskRecord) { d.Version = 2 }),
		"short infohash": withSum(func(d *diskRecord) { d.InfoHash = d.InfoHash[:19] }),
		"bad stamp":      withSum(func(d *diskRecord) { d.Files[0] = []int64{1} }),
		"negative size":  withSum(func(d *diskRecord) { d.Files[0] = []int64{-2, 0} }),
		"have as int":    []byte(strings.Replace(string(good), "4:have2:\xff\x80", "4:havei1e", 1)),
	} {
		path := filepath.Join(t.TempDir(), "r")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: Load = %v; want ErrCorrupt naming the file", name, err)
		}
	}
	// The checksum-fixed edits really are only wrong in the edited field.
	if _, err := decode(withSum(func(d *diskRecord) {})); err != nil {
		t.Fatalf("unedited record re-encoded: %v", err)
	}
}

// TestSaveFileMode: a record is 0600 whatever the umask and the file it replaces, and no
// temporary file is left. (internal/atomicfile tests the atomic write itself.)
func TestSaveFileMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sampleRecord().Save(path); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("record mode %v, want 0600", st.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary file left behind: %d entries", len(ents))
	}
}

func TestSaveReadOnlyDirKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r")
	old := sampleRecord()
	if err := old.Save(path); err != nil {
		t.Fatal(err)
	}
	// Meaningless for root, who may write anyway.
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	if f, err := os.Create(filepath.Join(dir, "probe")); err == nil {
		f.Close()
		os.Remove(f.Name())
		t.Skip("the directory stays writable (running as root)")
	}
	r := sampleRecord()
	r.Uploaded++
	if err := r.Save(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Save into a read-only directory = %v", err)
	}
	got, err := Load(path)
	if err != nil || !reflect.DeepEqual(got, old) {
		t.Fatalf("old record after a failed save: %+v, %v", got, err)
	}
}

func TestSaveIntoMissingDirectory(t *testing.T) {
	if err := sampleRecord().Save(filepath.Join(t.TempDir(), "no", "r")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Save into a missing directory = %v", err)
	}
}

// TestPathFor: the name seed, get and the agent share, so that a torrent seeded by one and
// then the other resumes from the same record.
func TestPathFor(t *testing.T) {
	var ih [20]byte
	for i := range ih {
		ih[i] = byte(0xa0 + i)
	}
	want := "/var/lib/webswarm/a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3.resume"
	if got := PathFor("/var/lib/webswarm", ih); got != want {
		t.Errorf("PathFor = %q, want %q", got, want)
	}
}
