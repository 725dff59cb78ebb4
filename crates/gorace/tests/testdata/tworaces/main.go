// Two races, detected in a fixed order: one on a heap object allocated by a helper,
// one on a global. The goroutines take turns through an atomic flag polled with race
// synchronisation disabled (runtime.RaceDisable), so the order is fixed but no
// happens-before edge hides the races.
package main

import (
	"fmt"
	"runtime"
	"sync/atomic"
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

var turn atomic.Int32

func waitTurn(n int32) {
	runtime.RaceDisable()
	for turn.Load() != n {
		runtime.Gosched()
	}
	runtime.RaceEnable()
}

func setTurn(n int32) {
	runtime.RaceDisable()
	turn.Store(n)
	runtime.RaceEnable()
}

func main() {
	c := newCounter("a")
	go func() {
		bump(c)
		total = 1
		setTurn(1)
		waitTurn(2) // still running when the races are reported
	}()
	waitTurn(1)
	bump(c)
	total = 2
	setTurn(2)
	fmt.Println(c.hits, total)
}
