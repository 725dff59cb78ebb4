// verdict: norace
// A value written before an unbuffered send is visible after the receive.
package main

import "fmt"

func main() {
	data := 0
	done := make(chan bool)
	go func() {
		data = 42
		done <- true
	}()
	<-done
	fmt.Println(data)
}
