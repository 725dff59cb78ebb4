// verdict: race
// Two goroutines write one map with no synchronisation (sleeps only separate them
// in time; they do not order them, so the race detector still sees it).
package main

import (
	"fmt"
	"sync"
	"time"
)

func main() {
	m := map[string]int{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		m["a"] = 1
	}()
	time.Sleep(50 * time.Millisecond)
	m["b"] = 2
	wg.Wait()
	fmt.Println(len(m))
}
