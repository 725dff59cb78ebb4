// verdict: race
// A package-level counter incremented by several goroutines.
package main

import (
	"fmt"
	"sync"
	"time"
)

var requests int

func handle(i int) {
	time.Sleep(time.Duration(i) * 20 * time.Millisecond)
	requests++
}

func main() {
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			handle(i)
		}()
	}
	wg.Wait()
	fmt.Println(requests)
}
