// verdict: norace
// Goroutines write disjoint elements of one slice: different memory, no race.
package main

import (
	"fmt"
	"sync"
)

func main() {
	buf := make([]byte, 64)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * 16; i < (w+1)*16; i++ {
				buf[i] = byte(w)
			}
		}()
	}
	wg.Wait()
	fmt.Println(buf[0], buf[63])
}
