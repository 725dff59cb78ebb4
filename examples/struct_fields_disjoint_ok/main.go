// verdict: norace
// Different fields are different memory locations.
package main

import (
	"fmt"
	"sync"
)

type stats struct {
	reads  int64
	writes int64
}

func main() {
	var s stats
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.reads++ }()
	go func() { defer wg.Done(); s.writes++ }()
	wg.Wait()
	fmt.Println(s.reads, s.writes)
}
