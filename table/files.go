package table

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// File names inside Config.Dir, after notp's: the live log, the log being
// compacted, the snapshot and the snapshot being written.
const (
	suffixLatest   = "_LATEST.LOG"
	suffixPrev     = "_PREV.LOG"
	suffixData     = "_DATA.SNAP"
	suffixDataPrev = "_DATA_PREV.SNAP"
	suffixLock     = ".LOCK"
)

// Log file header: magic, the log's generation (little-endian), and the
// CRC-32C of those 16 bytes. Generations grow by one at each rotation; a
// snapshot records the last generation it covers, so recovery replays
// only logs newer than the snapshot, and never a log twice.
const (
	logMagic  = "NTPTLOG1"
	logHeader = 20
)

func appendLogHeader(dst []byte, gen uint64) []byte {
	dst = append(dst, logMagic...)
	dst = binary.LittleEndian.AppendUint64(dst, gen)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[len(dst)-16:], castagnoli))
}

// errTornHeader marks a log whose header is missing or damaged.
var errTornHeader = errors.New("torn log header")

// readLogHeader reads and checks the header of the log f.
func readLogHeader(f io.Reader) (uint64, error) {
	var h [logHeader]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, errTornHeader
		}
		return 0, err
	}
	if string(h[:8]) != logMagic || crc32.Checksum(h[:16], castagnoli) != binary.LittleEndian.Uint32(h[16:]) {
		return 0, errTornHeader
	}
	gen := binary.LittleEndian.Uint64(h[8:16])
	if gen == 0 || gen > maxGen {
		return 0, errTornHeader
	}
	return gen, nil
}

// maxGen bounds generations read from disk, so that counting up from
// one can never wrap around (a table rotating every millisecond takes
// millions of years to reach it).
const maxGen = 1 << 62

// createLog creates (or truncates) the log at path with a header for gen.
func createLog(path string, gen uint64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(appendLogHeader(nil, gen)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// syncDir fsyncs a directory, making renames, creations and removals in
// it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("table: syncing directory: %w", err)
	}
	return nil
}

// removeIfExists removes path, reporting whether it existed.
func removeIfExists(path string) (bool, error) {
	err := os.Remove(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (c *Config) path(suffix string) string {
	return filepath.Join(c.Dir, c.Name+suffix)
}

// makeDir creates dir if it is missing, and then fsyncs its parent so
// that the new directory, and with it the table, survives a machine
// crash.
func makeDir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return syncDir(filepath.Dir(filepath.Clean(dir)))
}
