// verdict: norace
// sync.Once: the initialisation happens before every Do returns.
package main

import (
	"fmt"
	"sync"
)

var (
	once  sync.Once
	table map[string]int
)

func lookup(k string) int {
	once.Do(func() { table = map[string]int{"a": 1, "b": 2} })
	return table[k]
}

func main() {
	var wg sync.WaitGroup
	for _, k := range []string{"a", "b", "a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = lookup(k)
		}()
	}
	wg.Wait()
	fmt.Println(lookup("a"))
}
