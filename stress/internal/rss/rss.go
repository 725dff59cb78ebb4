// Package rss reads the process's resident set size from /proc/self/status.
package rss

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// KiB returns VmRSS (or VmHWM when hwm is true) in KiB, or -1 if it cannot be read.
func KiB(hwm bool) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	key := "VmRSS:"
	if hwm {
		key = "VmHWM:"
	}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), key); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// MiB is KiB(false) in MiB.
func MiB() float64 { return float64(KiB(false)) / 1024 }
