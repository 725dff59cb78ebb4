// verdict: norace
// select over a result channel and a quit channel.
package main

import (
	"fmt"
	"time"
)

func main() {
	result := make(chan []int)
	quit := make(chan struct{})
	go func() {
		s := []int{1, 2, 3}
		select {
		case result <- s:
		case <-quit:
		}
	}()
	select {
	case s := <-result:
		s[0] = 10
		fmt.Println(s)
	case <-time.After(10 * time.Second):
		close(quit)
	}
}
