// verdict: race
// Two goroutines append to one slice variable.
package main

import (
	"fmt"
	"sync"
	"time"
)

func main() {
	var items []int
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 50 * time.Millisecond)
			items = append(items, i)
		}()
	}
	wg.Wait()
	fmt.Println(len(items))
}
