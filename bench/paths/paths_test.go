// Per-path costs of the race runtime, one loop per path of the access code (not part
// of bench/run.py's workloads or its geometric mean). Each test runs one path tens of
// millions of times; compare the same test across the four builds (see the README).
package paths

import (
	"sync"
	"testing"
)

var mu sync.Mutex

type R32 struct{ Lo, Hi, Stride uint32 }

var table = make([]R32, 64)
var bytes = make([]byte, 4096)
var sink int

// A 1-byte read of a cell this goroutine read in this epoch (the same-epoch hit).
func TestRead(t *testing.T) {
	s := 0
	for i := 0; i < 50_000_000; i++ {
		s += int(bytes[i&4095])
	}
	sink = s
}

// A 12-byte struct copy (racereadrange) from a table: the small-range path.
func TestRange12(t *testing.T) {
	s := uint32(0)
	for i := 0; i < 50_000_000; i++ {
		r := table[i&63]
		s += r.Lo + r.Hi
	}
	sink = int(s)
}

// A 1-byte write to a cell written in this epoch.
func TestWrite(t *testing.T) {
	for i := 0; i < 50_000_000; i++ {
		bytes[i&4095] = byte(i)
	}
}

// First writes to freshly allocated memory: the empty-cell path.
func TestFresh(t *testing.T) {
	s := 0
	for r := 0; r < 200; r++ {
		b := make([]uint64, 1<<17)
		for i := range b {
			b[i] = uint64(i)
		}
		s += int(b[r])
	}
	sink = s
}

var big = make([]byte, 1<<20)

// Byte-wise writes after a new epoch: the slow path that widens a record's bytes.
func TestBytes(t *testing.T) {
	for r := 0; r < 40; r++ {
		for i := range big {
			big[i] = byte(r)
		}
		mu.Lock() // a new epoch: every cell's first write is a slow path again
		mu.Unlock()
	}
}

// A read, then a write, of each word after a new epoch: the slow path that replaces
// a read record by a write record.
func TestReadThenWrite(t *testing.T) {
	s := 0
	for r := 0; r < 300; r++ {
		for i := 0; i < len(table2); i++ {
			s += int(table2[i])
			table2[i] = uint64(s)
		}
		mu.Lock()
		mu.Unlock()
	}
	sink = s
}

var table2 = make([]uint64, 1<<15)

type pair struct{ A, B int32 }

var pairs = make([]pair, 1<<15)

// Two fields of a struct written from two lines after a new epoch: the slow path that
// replaces the last epoch's record by the first field's, then joins the second field's
// write to it (a composite site).
func TestFields(t *testing.T) {
	for r := 0; r < 300; r++ {
		for i := range pairs {
			pairs[i].A = int32(r)
			pairs[i].B = int32(i)
		}
		mu.Lock()
		mu.Unlock()
	}
}
