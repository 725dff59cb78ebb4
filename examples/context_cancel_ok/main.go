// verdict: norace
// Results published before cancel are visible after Done.
package main

import (
	"context"
	"fmt"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	var result string
	go func() {
		result = "computed"
		cancel()
	}()
	<-ctx.Done()
	fmt.Println(result)
}
