// verdict: norace
// An atomic flag publishes plain data; an atomic counter needs no lock.
package main

import (
	"fmt"
	"sync"
	"sync/atomic"
)

func main() {
	var ready atomic.Bool
	var count atomic.Int64
	payload := ""
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		payload = "data"
		ready.Store(true)
	}()
	for !ready.Load() {
	}
	fmt.Println(payload)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			count.Add(1)
		}()
	}
	wg.Wait()
	fmt.Println(count.Load())
}
