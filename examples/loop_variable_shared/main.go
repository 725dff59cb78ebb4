// verdict: race
// The closure captures a variable declared outside the loop: every goroutine reads
// the one variable the loop keeps writing (Go 1.22's per-iteration variables only
// apply to variables declared by the for statement itself).
package main

import (
	"fmt"
	"sync"
)

func main() {
	var wg sync.WaitGroup
	var i int
	for i = 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fmt.Println(i)
		}()
	}
	wg.Wait()
}
