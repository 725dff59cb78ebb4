// Micro-workloads for gorace's benchmark (bench/run.py): each test stresses one part
// of the race runtime. They are race-free; a report would be a false positive. Each
// runs for about 0.3 s or more under stock ThreadSanitizer on a 2-core machine, so that
// a few milliseconds of start-up or scheduling do not decide its ratios.
package micro

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

var sink int

func TestTightLoop(t *testing.T) {
	a := make([]int, 1024)
	for r := 0; r < 30_000; r++ {
		for i := range a {
			a[i] += i ^ r
		}
	}
	sink = a[7]
}

func TestSliceCopy(t *testing.T) {
	src := make([]byte, 1<<20)
	dst := make([]byte, 1<<20)
	for r := 0; r < 1600; r++ {
		copy(dst, src)
		src[r] = byte(r)
	}
	sink = int(dst[3])
}

func TestMutexUncontended(t *testing.T) {
	var mu sync.Mutex
	n := 0
	for i := 0; i < 3_000_000; i++ {
		mu.Lock()
		n++
		mu.Unlock()
	}
	sink = n
}

func TestMutexContended(t *testing.T) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	n := 0
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 450_000; i++ {
				mu.Lock()
				n++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sink = n
}

func TestRWMutexReaders(t *testing.T) {
	var rw sync.RWMutex
	var wg sync.WaitGroup
	m := map[int]int{1: 1}
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := 0
			for i := 0; i < 600_000; i++ {
				rw.RLock()
				s += m[1]
				rw.RUnlock()
			}
			_ = s
		}()
	}
	wg.Wait()
}

func pingPong(ch1, ch2 chan int, n int) {
	go func() {
		for v := range ch1 {
			ch2 <- v + 1
		}
		close(ch2)
	}()
	for i := 0; i < n; i++ {
		ch1 <- i
		<-ch2
	}
	close(ch1)
}

func TestChanUnbuffered(t *testing.T) { pingPong(make(chan int), make(chan int), 600_000) }

func TestChanBuffered(t *testing.T) {
	ch := make(chan int, 128)
	done := make(chan int)
	go func() {
		s := 0
		for v := range ch {
			s += v
		}
		done <- s
	}()
	for i := 0; i < 1_500_000; i++ {
		ch <- i
	}
	close(ch)
	sink = <-done
}

func TestSelect(t *testing.T) {
	a, b, quit := make(chan int), make(chan int), make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			select {
			case a <- i:
			case b <- i:
			case <-quit:
				return
			}
		}
	}()
	s := 0
	for i := 0; i < 600_000; i++ {
		select {
		case v := <-a:
			s += v
		case v := <-b:
			s -= v
		}
	}
	close(quit)
	sink = s
}

func TestWaitGroupFanOut(t *testing.T) {
	out := make([]int, 64)
	for r := 0; r < 4000; r++ {
		var wg sync.WaitGroup
		for i := range out {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[i] += i
			}()
		}
		wg.Wait()
	}
	sink = out[5]
}

func TestAtomicAdd(t *testing.T) {
	var n atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1_000_000; i++ {
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	sink = int(n.Load())
}

func TestGoroutineChurn(t *testing.T) {
	var wg sync.WaitGroup
	var n atomic.Int64
	for i := 0; i < 100_000; i++ {
		wg.Add(1)
		go func() {
			n.Add(1)
			wg.Done()
		}()
		if i%1000 == 999 {
			wg.Wait()
		}
	}
	wg.Wait()
	sink = int(n.Load())
}

// A long-lived server-like run: a pool of long-lived workers serving requests that
// allocate, plus short-lived goroutines per request; memory must stay bounded.
func TestServerLike(t *testing.T) {
	type request struct {
		payload []byte
		reply   chan int
	}
	reqs := make(chan request)
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range reqs {
				buf := make([]byte, len(r.payload)*2)
				copy(buf, r.payload)
				r.reply <- len(buf)
			}
		}()
	}
	var cache sync.Map
	for i := 0; i < 60_000; i++ {
		reply := make(chan int, 1)
		go func() {
			reqs <- request{payload: make([]byte, 512), reply: reply}
		}()
		n := <-reply
		cache.Store(i%1024, n)
		if i%10_000 == 0 {
			runtime.GC()
		}
	}
	close(reqs)
	wg.Wait()
}
