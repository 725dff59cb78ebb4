// verdict: race
// The sender writes after its send: nothing orders that write with the receiver's.
package main

import (
	"fmt"
	"sync"
)

func main() {
	x := 0
	ch := make(chan int)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ch
		x = 1
	}()
	ch <- 1
	x = 2
	wg.Wait()
	fmt.Println(x)
}
