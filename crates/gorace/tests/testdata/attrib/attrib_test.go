// Races in parallel tests, parallel subtests and goroutines spawned by tests: each race
// touches its own variable through its own function, so the test each belongs to is
// known from the function names in its stacks.
package attrib

import (
	"sync"
	"testing"
	"time"
)

var alphaVar, betaVar, parAVar, parBVar, spawnVar int

func raceAlpha() { alphaVar++ }
func raceBeta()  { betaVar++ }
func raceParA()  { parAVar++ }
func raceParB()  { parBVar++ }
func raceSpawn() { spawnVar++ }

// race runs f in a new goroutine and in the caller, ordered by time only.
func race(f func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f()
	}()
	time.Sleep(20 * time.Millisecond)
	f()
	wg.Wait()
}

func TestParallelA(t *testing.T) {
	t.Parallel()
	time.Sleep(10 * time.Millisecond)
	race(raceParA)
}

func TestParallelB(t *testing.T) {
	t.Parallel()
	race(raceParB)
}

func TestSub(t *testing.T) {
	t.Run("alpha one", func(t *testing.T) {
		t.Parallel()
		race(raceAlpha)
	})
	t.Run("beta", func(t *testing.T) {
		t.Parallel()
		time.Sleep(5 * time.Millisecond)
		race(raceBeta)
	})
}

func TestSpawn(t *testing.T) {
	done := make(chan bool)
	go func() {
		race(raceSpawn)
		done <- true
	}()
	<-done
}

func TestClean(t *testing.T) {
	t.Log("no race here")
}
