// verdict: race 2
// Two unrelated races: both are reported, then "Found 2 data race(s)".
package main

import (
	"fmt"
	"sync"
	"time"
)

var a, b int

func main() {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a = 1
		b = 1
	}()
	time.Sleep(50 * time.Millisecond)
	a = 2
	b = 2
	wg.Wait()
	fmt.Println(a, b)
}
