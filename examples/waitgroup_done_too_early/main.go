// verdict: race
// Done is called before the write it was meant to publish.
package main

import (
	"fmt"
	"sync"
	"time"
)

func main() {
	var wg sync.WaitGroup
	var finished sync.WaitGroup
	total := 0
	wg.Add(1)
	finished.Add(1)
	go func() {
		wg.Done()
		total = 7
		finished.Done()
	}()
	wg.Wait()
	time.Sleep(50 * time.Millisecond)
	fmt.Println(total)
	finished.Wait()
}
