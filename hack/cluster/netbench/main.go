// Command netbench measures TCP throughput between two pods of the
// real-cluster tier (it is in the plexus.local/toolbox image):
//
//	netbench -s [-l :5201]              serve: read and discard, forever
//	netbench -c HOST:PORT [-t 3s]       send for -t and print the rate
//
// The client prints one line: "bytes=N seconds=S gbps=G".
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"time"
)

func main() {
	serve := flag.Bool("s", false, "serve")
	listen := flag.String("l", ":5201", "address to serve on")
	connect := flag.String("c", "", "server to send to (HOST:PORT)")
	duration := flag.Duration("t", 3*time.Second, "how long to send")
	flag.Parse()
	switch {
	case *serve:
		log.Fatal(runServer(*listen))
	case *connect != "":
		n, secs, err := runClient(*connect, *duration)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("bytes=%d seconds=%.3f gbps=%.3f\n", n, secs, float64(n)*8/secs/1e9)
	default:
		flag.Usage()
		os.Exit(2)
	}
}

func runServer(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}()
	}
}

func runClient(addr string, d time.Duration) (int64, float64, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	buf := make([]byte, 128<<10)
	var n int64
	start := time.Now()
	deadline := start.Add(d)
	for time.Now().Before(deadline) {
		w, err := c.Write(buf)
		n += int64(w)
		if err != nil {
			return n, time.Since(start).Seconds(), err
		}
	}
	return n, time.Since(start).Seconds(), nil
}
