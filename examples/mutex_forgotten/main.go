// verdict: race
// One goroutine forgets the lock.
package main

import (
	"fmt"
	"sync"
	"time"
)

func main() {
	var mu sync.Mutex
	var wg sync.WaitGroup
	balance := 100
	wg.Add(2)
	go func() {
		defer wg.Done()
		mu.Lock()
		balance -= 10
		mu.Unlock()
	}()
	go func() {
		defer wg.Done()
		time.Sleep(50 * time.Millisecond)
		balance += 10 // no lock
	}()
	wg.Wait()
	fmt.Println(balance)
}
