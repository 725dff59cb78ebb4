// verdict: norace
// Buffered channel: the k-th receive happens after the k-th send.
package main

import "fmt"

func main() {
	results := make([]int, 4)
	ch := make(chan int, 4)
	for i := range 4 {
		go func() {
			results[i] = i * i
			ch <- i
		}()
	}
	for range 4 {
		<-ch
	}
	fmt.Println(results)
}
