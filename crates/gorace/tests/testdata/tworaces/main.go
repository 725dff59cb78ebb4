// Two races, each detected in a fixed order (sleeps, not synchronisation, order them):
// one on a heap object allocated by a helper, one on a global.
package main

import (
	"fmt"
	"time"
)

type counter struct {
	name string
	hits int
}

var total int

func newCounter(name string) *counter {
	return &counter{name: name}
}

func bump(c *counter) {
	c.hits++
}

func main() {
	c := newCounter("a")
	done := make(chan bool)
	go func() {
		bump(c)
		total = 1
		done <- true
	}()
	time.Sleep(100 * time.Millisecond)
	bump(c)
	time.Sleep(100 * time.Millisecond)
	total = 2
	<-done
	fmt.Println(c.hits, total)
}
