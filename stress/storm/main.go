// Report storm: 10,000 races with distinct stack pairs in one run. Variable (i, j) is
// written once through writer function w_i and read once through reader function r_j,
// by -writers and -readers goroutines that run at the same time and never synchronise,
// so reports come from several threads at once. Go generate funcs.go with gen.sh.
//
// STRESS_BREAK=sync makes the readers wait for the writers (no race; the check must
// catch it).
package main

import (
	"flag"
	"fmt"
	"os"
	"sync"
)

func main() {
	nw := flag.Int("writers", 8, "writer goroutines")
	nr := flag.Int("readers", 8, "reader goroutines")
	flag.Parse()
	brk := os.Getenv("STRESS_BREAK")
	vars := make([]int, 100*100)
	var wg, wwg sync.WaitGroup
	for g := 0; g < *nw; g++ {
		wg.Add(1)
		wwg.Add(1)
		go func() {
			defer wg.Done()
			defer wwg.Done()
			for v := g; v < len(vars); v += *nw {
				writers[v/100](&vars[v])
			}
		}()
	}
	sum := 0
	var mu sync.Mutex
	for g := 0; g < *nr; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if brk == "sync" {
				wwg.Wait()
			}
			s := 0
			for v := g; v < len(vars); v += *nr {
				s += readers[v%100](&vars[v])
			}
			mu.Lock()
			sum += s
			mu.Unlock()
		}()
	}
	wg.Wait()
	fmt.Fprintf(os.Stderr, "storm: variables=%d done\n", len(vars))
}
