// verdict: norace
// sync.Map needs no extra locking.
package main

import (
	"fmt"
	"sync"
)

func main() {
	var m sync.Map
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.Store(i, i*i)
			m.Load(i - 1)
		}()
	}
	wg.Wait()
	n := 0
	m.Range(func(_, _ any) bool { n++; return true })
	fmt.Println(n)
}
