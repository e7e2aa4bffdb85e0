package table

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
)

// Snapshot file layout:
//
//	header  "NTPTSNP1" and a flags byte (bit 0: the body is gzipped)
//	body    records (the same framing as the log) that rebuild the table
//	footer  record count (8 bytes), generation covered (8), CRC-32C of the
//	        body as stored (4), "NTPTEND1", CRC-32C of the 28 bytes before
//	        it (4)
//
// A snapshot is used only when its footer, body checksum and record count
// all check out.
const (
	snapMagic    = "NTPTSNP1"
	snapEnd      = "NTPTEND1"
	snapHeader   = 9
	snapFooter   = 32
	flagCompress = 1
)

// snapInfo describes a snapshot whose footer and checksum checked out.
type snapInfo struct {
	gen, count uint64
	compressed bool
	bodyLen    int64
}

// checkSnapshot validates the snapshot at path without decoding it. A
// missing file gives an error wrapping os.ErrNotExist; a damaged one an
// error wrapping ErrCorrupt.
func checkSnapshot(path string) (snapInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return snapInfo{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return snapInfo{}, err
	}
	size := st.Size()
	if size < snapHeader+snapFooter {
		return snapInfo{}, fmt.Errorf("%w: snapshot %s: %d bytes is too short", ErrCorrupt, path, size)
	}
	var hdr [snapHeader]byte
	var ftr [snapFooter]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return snapInfo{}, err
	}
	if _, err := f.ReadAt(ftr[:], size-snapFooter); err != nil {
		return snapInfo{}, err
	}
	if string(hdr[:8]) != snapMagic || hdr[8]&^flagCompress != 0 {
		return snapInfo{}, fmt.Errorf("%w: snapshot %s: bad header", ErrCorrupt, path)
	}
	if string(ftr[20:28]) != snapEnd || crc32.Checksum(ftr[:28], castagnoli) != binary.LittleEndian.Uint32(ftr[28:]) {
		return snapInfo{}, fmt.Errorf("%w: snapshot %s: bad footer", ErrCorrupt, path)
	}
	info := snapInfo{
		count:      binary.LittleEndian.Uint64(ftr[0:]),
		gen:        binary.LittleEndian.Uint64(ftr[8:]),
		compressed: hdr[8]&flagCompress != 0,
		bodyLen:    size - snapHeader - snapFooter,
	}
	if info.gen > maxGen {
		return snapInfo{}, fmt.Errorf("%w: snapshot %s: generation %d out of range", ErrCorrupt, path, info.gen)
	}
	h := crc32.New(castagnoli)
	if _, err := io.Copy(h, io.NewSectionReader(f, snapHeader, info.bodyLen)); err != nil {
		return snapInfo{}, err
	}
	if h.Sum32() != binary.LittleEndian.Uint32(ftr[16:]) {
		return snapInfo{}, fmt.Errorf("%w: snapshot %s: body checksum mismatch", ErrCorrupt, path)
	}
	return info, nil
}

// loadSnapshot applies the records of the checked snapshot at path to s.
func loadSnapshot(path string, info snapInfo, s state) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var body io.Reader = bufio.NewReaderSize(io.NewSectionReader(f, snapHeader, info.bodyLen), 64<<10)
	limit := info.bodyLen
	if info.compressed {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return fmt.Errorf("%w: snapshot %s: %w", ErrCorrupt, path, err)
		}
		zr.Multistream(false)
		body, limit = zr, -1
	}
	rr := recordReader{r: body, limit: limit}
	var n uint64
	for {
		r, err := rr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: snapshot %s: record %d: %w", ErrCorrupt, path, n, err)
		}
		if n++; n > info.count {
			return fmt.Errorf("%w: snapshot %s: more than the %d records its footer counts", ErrCorrupt, path, info.count)
		}
		if _, err := s.apply(&r); err != nil {
			return fmt.Errorf("%w: snapshot %s: record %d: %w", ErrCorrupt, path, n, err)
		}
	}
	if n != info.count {
		return fmt.Errorf("%w: snapshot %s: %d records, footer says %d", ErrCorrupt, path, n, info.count)
	}
	return nil
}

// errAborted: a compaction stopped because the table is closing.
var errAborted = errors.New("table: compaction aborted by Close")

// testSnapshotWritten, when set by a test, runs once writeSnapshot has
// written the whole snapshot into its temporary file, before the fsync;
// an error it returns fails the write there, as a failed fsync would.
var testSnapshotWritten func(tmp string) error

// writeSnapshot writes s as a snapshot covering log generation gen: into
// tmp first, fsynced, then renamed over final, then the directory fsynced,
// so final is always either the old snapshot or the complete new one. It
// gives up with errAborted, removing tmp, once abort is closed.
func writeSnapshot(cfg *Config, s state, gen uint64, abort <-chan struct{}) (err error) {
	tmp, final := cfg.path(suffixDataPrev), cfg.path(suffixData)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 256<<10)
	var flags byte
	if cfg.Compress {
		flags = flagCompress
	}
	bw.Write(append([]byte(snapMagic), flags))
	sum := crc32.New(castagnoli)
	body := io.MultiWriter(bw, sum)
	count, err := writeBody(body, cfg.Compress, s, abort)
	if err != nil {
		return err
	}
	if _, err := bw.Write(snapshotFooter(count, gen, sum)); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if testSnapshotWritten != nil {
		if err := testSnapshotWritten(tmp); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return syncDir(cfg.Dir)
}

// writeBody writes s's records to w, gzipped if compress, and counts them.
func writeBody(w io.Writer, compress bool, s state, abort <-chan struct{}) (uint64, error) {
	var zw *gzip.Writer
	if compress {
		zw = gzip.NewWriter(w)
		w = zw
	}
	var count uint64
	var buf []byte
	for k, e := range s {
		select {
		case <-abort:
			return 0, errAborted
		default:
		}
		var n int
		buf, n = appendSnapshot(buf[:0], k, e)
		count += uint64(n)
		if _, err := w.Write(buf); err != nil {
			return 0, err
		}
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return 0, err
		}
	}
	return count, nil
}

func snapshotFooter(count, gen uint64, body hash.Hash32) []byte {
	b := binary.LittleEndian.AppendUint64(nil, count)
	b = binary.LittleEndian.AppendUint64(b, gen)
	b = binary.LittleEndian.AppendUint32(b, body.Sum32())
	b = append(b, snapEnd...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}
