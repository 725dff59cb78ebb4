// verdict: norace
// Closing a channel happens before a receive that returns because it is closed.
package main

import "fmt"

func main() {
	msg := ""
	ready := make(chan struct{})
	go func() {
		msg = "hello"
		close(ready)
	}()
	<-ready
	fmt.Println(msg)
}
