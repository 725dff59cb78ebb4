// verdict: race
// Writing under a read lock: two readers hold it at once.
package main

import (
	"fmt"
	"sync"
	"time"
)

func main() {
	var rw sync.RWMutex
	var wg sync.WaitGroup
	hits := 0
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 50 * time.Millisecond)
			rw.RLock()
			hits++
			rw.RUnlock()
		}()
	}
	wg.Wait()
	fmt.Println(hits)
}
