package resume

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/anacrolix/torrent/bencode"

	"github.com/webswarm/webswarm/internal/atomicfile"
	"github.com/webswarm/webswarm/seedctl/storage"
)

// Version is the record format Save writes and Load accepts.
const Version = 1

// maxRecordSize bounds what Load reads: a bitfield of a million pieces is 128 KiB and a
// hundred thousand file stamps about 3 MB.
const maxRecordSize = 64 << 20

// Errors of this package, classified with errors.Is.
var (
	// ErrCorrupt: the record file is not a record this version wrote intact.
	ErrCorrupt = errors.New("corrupt resume record")
	// ErrMismatch: the record belongs to another torrent (info-hash, piece or file count).
	ErrMismatch = errors.New("resume record does not match the torrent")
)

// PathFor is where seed, get and the agent keep the record of the torrent infoHash in
// stateDir: 40 lower-case hex digits and ".resume".
func PathFor(stateDir string, infoHash [20]byte) string {
	return filepath.Join(stateDir, hex.EncodeToString(infoHash[:])+".resume")
}

// Record is what a restart needs to skip the hashing of an unchanged payload.
type Record struct {
	InfoHash [20]byte
	// Have is the set of verified pieces in the BITFIELD layout (wire.Bitfield.Bytes()).
	Have []byte
	// Files holds the size and modification time of every layout file when Have was taken
	// (storage.Files.Stat()).
	Files []storage.FileStamp
	// Clean is set on clean shutdown and cleared while the torrent is writing.
	Clean bool
	// Uploaded and Downloaded are the transfer totals across runs, in bytes.
	Uploaded, Downloaded int64
}

// diskRecord is Record as bencoded. Sum is the SHA-1 of the record encoded without it.
type diskRecord struct {
	Version    int64     `bencode:"version"`
	InfoHash   []byte    `bencode:"info hash"`
	Have       []byte    `bencode:"have"`
	Files      [][]int64 `bencode:"files"` // [size, mtime ns] per layout file
	Clean      int64     `bencode:"clean"`
	Uploaded   int64     `bencode:"uploaded"`
	Downloaded int64     `bencode:"downloaded"`
	Sum        []byte    `bencode:"sum,omitempty"`
}

// encode returns the record's file contents.
func (r *Record) encode() ([]byte, error) {
	d := diskRecord{
		Version:    Version,
		InfoHash:   r.InfoHash[:],
		Have:       r.Have,
		Files:      make([][]int64, len(r.Files)),
		Uploaded:   r.Uploaded,
		Downloaded: r.Downloaded,
	}
	if d.Have == nil {
		d.Have = []byte{}
	}
	if r.Clean {
		d.Clean = 1
	}
	for i, s := range r.Files {
		d.Files[i] = []int64{s.Size, s.ModTime}
	}
	body, err := bencode.Marshal(d)
	if err != nil {
		return nil, err
	}
	sum := sha1.Sum(body)
	d.Sum = sum[:]
	return bencode.Marshal(d)
}

// Load reads the record at path. An absent file is an error wrapping fs.ErrNotExist; one that
// is not an intact record of this version is ErrCorrupt.
func Load(path string) (*Record, error) {
	// storage.ReadFile: an agent reads one record per torrent at start-up, and os.Open's
	// poller registration was a fifth of that start-up's CPU.
	data, _, err := storage.ReadFile(path, maxRecordSize)
	switch {
	case errors.Is(err, storage.ErrTooLarge), errors.Is(err, storage.ErrNotRegular):
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	case err != nil:
		return nil, fmt.Errorf("resume record: %w", err)
	}
	r, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// decode parses a record file's contents.
func decode(data []byte) (*Record, error) {
	if len(data) > maxRecordSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrCorrupt, maxRecordSize)
	}
	var d diskRecord
	if err := bencode.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if d.Version != Version {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrCorrupt, d.Version, Version)
	}
	sum := d.Sum
	d.Sum = nil
	body, err := bencode.Marshal(d)
	if want := sha1.Sum(body); err != nil || !bytes.Equal(sum, want[:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	if len(d.InfoHash) != 20 {
		return nil, fmt.Errorf("%w: info hash of %d bytes", ErrCorrupt, len(d.InfoHash))
	}
	r := &Record{
		Have:       d.Have,
		Files:      make([]storage.FileStamp, len(d.Files)),
		Clean:      d.Clean == 1,
		Uploaded:   d.Uploaded,
		Downloaded: d.Downloaded,
	}
	copy(r.InfoHash[:], d.InfoHash)
	for i, s := range d.Files {
		if len(s) != 2 || s[0] < -1 {
			return nil, fmt.Errorf("%w: file stamp %d: %v", ErrCorrupt, i, s)
		}
		r.Files[i] = storage.FileStamp{Size: s[0], ModTime: s[1]}
	}
	return r, nil
}

// Save writes the record to path atomically (internal/atomicfile): a temporary file in the
// same directory, fsync, rename over path, fsync of the directory. On failure the previous
// file is left as it was and no temporary file remains. Records are 0600, like the state
// directory they are in.
func (r *Record) Save(path string) error {
	data, err := r.encode()
	if err != nil {
		return fmt.Errorf("encode resume record: %w", err)
	}
	if err := atomicfile.WriteFile(path, data, atomicfile.Options{Mode: 0o600}); err != nil {
		return fmt.Errorf("save resume record: %w", err)
	}
	return nil
}
