// verdict: race
// A heap object handed to a goroutine and then modified by its creator.
package main

import (
	"fmt"
	"sync"
	"time"
)

type account struct {
	owner   string
	balance int
}

func audit(a *account, wg *sync.WaitGroup) {
	defer wg.Done()
	time.Sleep(50 * time.Millisecond)
	fmt.Println(a.owner, a.balance)
}

func main() {
	a := &account{owner: "ann", balance: 10}
	var wg sync.WaitGroup
	wg.Add(1)
	go audit(a, &wg)
	a.balance = 20
	wg.Wait()
}
