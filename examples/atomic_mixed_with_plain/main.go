// verdict: race
// An atomic increment and a plain read of the same word.
package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	var hits int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		atomic.AddInt64(&hits, 1)
	}()
	time.Sleep(50 * time.Millisecond)
	fmt.Println(hits) // plain read
	wg.Wait()
}
