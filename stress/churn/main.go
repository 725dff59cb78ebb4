// Goroutine churn: -n goroutines over the run, at most -alive at a time. Every -k-th
// slot starts a pair of goroutines that race on their own variable (one write each, no
// synchronisation between the two), so the run must report exactly n/k races with
// GORACE=suppress_equal_stacks=0. RSS is sampled after each quarter, once every
// goroutine of that quarter has finished; the last line compares the half with the end.
//
// STRESS_BREAK=sync orders each pair (the second waits for the first): the planted races
// disappear, which the race-count check must catch. STRESS_BREAK=leak keeps 4 KiB per
// goroutine reachable, which the RSS check must catch.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"gorace.stress/internal/rss"
)

var leak [][]byte
var leakMu sync.Mutex

func main() {
	n := flag.Int("n", 1_000_000, "goroutines in total")
	alive := flag.Int("alive", 10_000, "at most this many alive at once")
	k := flag.Int("k", 1000, "every k-th goroutine starts a racing pair")
	flag.Parse()
	brk := os.Getenv("STRESS_BREAK")

	vars := make([]int, *n / *k + 1)
	sem := make(chan struct{}, *alive)
	var wg sync.WaitGroup
	planted := 0
	started := 0
	t0 := time.Now()
	quarter := *n / 4
	next := quarter
	var samples, others []float64
	// sample returns RSS and the part of it that is not Go's own memory (mapped by Go's
	// runtime and not returned to the OS): the race runtime's.
	sample := func() (float64, float64) {
		wg.Wait()
		runtime.GC()
		debug.FreeOSMemory()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		r := rss.MiB()
		return r, r - float64(m.Sys-m.HeapReleased)/(1<<20)
	}
	// One unit of work: take a slot, run, give it back.
	plain := func() {
		defer wg.Done()
		x := 0
		for i := 0; i < 10; i++ {
			x += i
		}
		_ = x
		if brk == "leak" {
			b := make([]byte, 4096)
			b[0] = 1
			leakMu.Lock()
			leak = append(leak, b)
			leakMu.Unlock()
		}
		<-sem
	}
	for started < *n {
		if started%*k == 0 && started+2 <= *n {
			// Both slots are taken before either goroutine starts: neither goroutine
			// can be ordered after the other through the semaphore.
			sem <- struct{}{}
			sem <- struct{}{}
			p := &vars[planted]
			planted++
			wg.Add(2)
			first := make(chan struct{})
			go func() {
				defer wg.Done()
				*p = 1
				close(first)
				<-sem
			}()
			go func() {
				defer wg.Done()
				if brk == "sync" {
					<-first
				}
				*p = 2
				<-sem
			}()
			started += 2
		} else {
			sem <- struct{}{}
			wg.Add(1)
			go plain()
			started++
		}
		if started >= next {
			next += quarter
			r, o := sample()
			samples = append(samples, r)
			others = append(others, o)
			fmt.Printf("churn: %d goroutines started, %d alive max, RSS %.1f MiB (race runtime's part %.1f MiB), %.1fs\n",
				started, *alive, r, o, time.Since(t0).Seconds())
		}
	}
	r, o := sample()
	fmt.Printf("churn: planted=%d goroutines=%d seconds=%.1f rss_half_mib=%.1f rss_end_mib=%.1f other_half_mib=%.1f other_end_mib=%.1f\n",
		planted, started, time.Since(t0).Seconds(), samples[1], r, others[1], o)
}
