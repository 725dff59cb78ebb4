// Simultaneity: GOMAXPROCS goroutines are released together (they only acquire from
// main's atomic store, never from each other) and spin writing and reading the same
// words. The accesses are unordered, so every run must report at least one race.
//
// STRESS_BREAK=sync puts a mutex around the accesses (no race; the check must catch it).
package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
)

var words [4]uint64

func main() {
	brk := os.Getenv("STRESS_BREAK")
	p := runtime.GOMAXPROCS(0)
	var start atomic.Bool
	var ready atomic.Int32
	var wg sync.WaitGroup
	var mu sync.Mutex
	for g := 0; g < p; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready.Add(1)
			for !start.Load() {
			}
			for i := 0; i < 2000; i++ {
				if brk == "sync" {
					mu.Lock()
				}
				w := &words[i%len(words)]
				*w += uint64(g)
				if brk == "sync" {
					mu.Unlock()
				}
			}
		}()
	}
	for ready.Load() != int32(p) {
	}
	start.Store(true)
	wg.Wait()
	fmt.Printf("simul: goroutines=%d\n", p)
}
