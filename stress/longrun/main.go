// Long runs: goroutine L performs -releases mutex unlocks (each one a release that
// advances L's own time; 2^25 of them exhaust a 25-bit time and force L onto a fresh
// clock index), then creates -goroutines short goroutines one after another (more than
// any fixed slot table holds), then reads x; a goroutine it then creates reads y.
// W, started together with L and never synchronised with it, wrote x and y at the very
// beginning and exited. Both reads race with W's writes: the run must report exactly
// 2 races, each with both stacks.
//
// STRESS_BREAK=sync makes L wait for W before its reads (the races disappear; the check
// must catch it).
package main

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"time"
)

var x, y int

//go:noinline
func writeBoth() { x = 1; y = 1 }

//go:noinline
func readX() int { return x }

//go:noinline
func readY() int { return y }

func main() {
	releases := flag.Int("releases", 1<<25+1000, "mutex unlocks on one goroutine")
	gs := flag.Int("goroutines", 70_000, "goroutines created one after another")
	flag.Parse()
	brk := os.Getenv("STRESS_BREAK")
	var wg sync.WaitGroup
	wDone := make(chan struct{})
	wg.Add(2)
	go func() { // W
		defer wg.Done()
		writeBoth()
		close(wDone)
	}()
	go func() { // L
		defer wg.Done()
		var mu sync.Mutex
		t0 := time.Now()
		for i := 0; i < *releases; i++ {
			mu.Lock()
			mu.Unlock()
		}
		tRel := time.Since(t0)
		t1 := time.Now()
		for i := 0; i < *gs; i++ {
			var cwg sync.WaitGroup
			cwg.Add(1)
			go func() { cwg.Done() }()
			cwg.Wait()
		}
		tGo := time.Since(t1)
		if brk == "sync" {
			<-wDone
		}
		_ = readX()
		var nwg sync.WaitGroup
		nwg.Add(1)
		go func() { defer nwg.Done(); _ = readY() }()
		nwg.Wait()
		fmt.Printf("longrun: releases=%d release_seconds=%.2f ns_per_lock_unlock=%.0f goroutines=%d goroutine_seconds=%.2f\n",
			*releases, tRel.Seconds(), float64(tRel.Nanoseconds())/float64(*releases), *gs, tGo.Seconds())
	}()
	wg.Wait()
}
