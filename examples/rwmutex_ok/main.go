// verdict: norace
// Readers share an RLock; the writer takes the Lock.
package main

import (
	"fmt"
	"sync"
)

func main() {
	var rw sync.RWMutex
	var wg sync.WaitGroup
	config := map[string]string{"mode": "a"}
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 0 {
				rw.Lock()
				config["mode"] = "b"
				rw.Unlock()
				return
			}
			rw.RLock()
			_ = config["mode"]
			rw.RUnlock()
		}()
	}
	wg.Wait()
	fmt.Println(config["mode"])
}
