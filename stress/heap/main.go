// Heap: -cycles times, grow a live heap of -live MiB (large 4-8 MiB objects and small
// 64 B-4 KiB ones, half the bytes each), churn it (-churn times the live size is freed
// and reallocated), then shrink it to 1/8 and return memory to the OS. RSS is printed
// at each peak and after each shrink, with the live heap, so the runner can check that
// RSS stays within a bound of the live heap, drops when the heap shrinks, and does not
// grow from cycle to cycle.
//
// STRESS_BREAK=leak keeps a quarter of the freed objects reachable (what never releasing shadow
// looks like from outside), which the checks must catch.
package main

import (
	"flag"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"gorace.stress/internal/rss"
)

var graveyard [][]byte

// report prints RSS and the part of it that is not Go's own memory (mapped by Go's
// runtime and not returned to the OS): that part is the race runtime's, mostly shadow.
func report(cycle int, phase string, live int64) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	r := rss.MiB()
	goMiB := float64(m.Sys-m.HeapReleased) / (1 << 20)
	fmt.Printf("heap: cycle=%d phase=%s live_mib=%.0f rss_mib=%.0f go_mib=%.0f other_mib=%.0f\n",
		cycle, phase, float64(live)/(1<<20), r, goMiB, r-goMiB)
}

func main() {
	liveMiB := flag.Int("live", 256, "live heap in MiB at each peak")
	cycles := flag.Int("cycles", 3, "grow/churn/shrink cycles")
	churn := flag.Int("churn", 2, "bytes freed and reallocated per cycle, in multiples of the live heap")
	flag.Parse()
	leak := os.Getenv("STRESS_BREAK") == "leak"
	rnd := rand.New(rand.NewSource(1))
	live := int64(*liveMiB) << 20
	var objs [][]byte
	var liveBytes int64
	alloc := func() {
		var n int
		if rnd.Intn(2) == 0 {
			n = (4 + rnd.Intn(5)) << 20
		} else {
			// Many small objects make up the other half of the bytes.
			for b := 0; b < 1<<20; b += n {
				n = 64 << rnd.Intn(7)
				o := make([]byte, n)
				o[0], o[n-1] = 1, 1
				objs = append(objs, o)
				liveBytes += int64(n)
			}
			return
		}
		o := make([]byte, n)
		for i := 0; i < n; i += 4096 {
			o[i] = 1 // touch every page: the runtime sees each write
		}
		objs = append(objs, o)
		liveBytes += int64(n)
	}
	free := func(i int) {
		liveBytes -= int64(len(objs[i]))
		if leak && rnd.Intn(4) == 0 {
			graveyard = append(graveyard, objs[i])
		}
		objs[i] = objs[len(objs)-1]
		objs = objs[:len(objs)-1]
	}
	t0 := time.Now()
	for c := 1; c <= *cycles; c++ {
		for liveBytes < live {
			alloc()
		}
		for freed := int64(0); freed < int64(*churn)*live; {
			i := rnd.Intn(len(objs))
			freed += int64(len(objs[i]))
			free(i)
			for liveBytes < live {
				alloc()
			}
		}
		runtime.GC()
		report(c, "peak", liveBytes)
		for liveBytes > live/8 {
			free(rnd.Intn(len(objs)))
		}
		runtime.GC()
		debug.FreeOSMemory()
		report(c, "shrunk", liveBytes)
	}
	fmt.Printf("heap: seconds=%.1f hwm_mib=%.0f\n", time.Since(t0).Seconds(), float64(rss.KiB(true))/1024)
}
