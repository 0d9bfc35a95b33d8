// go_echo: Go's goroutine-per-connection TCP echo server, the yardstick that
// scripts/bench measures greenify against (run it with GOMAXPROCS=2 on two
// cores). Standard library only: `go build` needs no network.
//
// Usage:  go_echo PORT   (PORT 0 picks an ephemeral port)
// Prints "listening on <port>" once ready, then runs until killed.
package main

import (
	"fmt"
	"net"
	"os"
)

func handle(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintf(os.Stderr, "usage: %s PORT\n", os.Args[0])
		os.Exit(2)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %d\n", ln.Addr().(*net.TCPAddr).Port)
	for {
		c, err := ln.Accept()
		if err != nil {
			// out of descriptors and the like: report, go on accepting
			fmt.Fprintln(os.Stderr, "accept:", err)
			continue
		}
		go handle(c)
	}
}
