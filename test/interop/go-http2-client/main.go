// A client for test/interop/go-http2.test.ts: Go's own HTTP/2 client (golang.org/x/net/http2,
// the transport Tailscale's control client is built on) against our HTTP/2 server connection
// on a plain socket. Each step prints "ok <step>" or "FAIL <step>: <why>" and exits 1.
// Usage: go-http2-client <port>
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

func fail(step string, err error) {
	fmt.Printf("FAIL %s: %v\n", step, err)
	os.Exit(1)
}

func main() {
	base := "http://127.0.0.1:" + os.Args[1]
	// Prior knowledge over a plain socket, with the health-check PINGs tailscaled's transport uses.
	transport := &http2.Transport{
		AllowHTTP:       true,
		ReadIdleTimeout: time.Second,
		PingTimeout:     2 * time.Second,
		DialTLS: func(network, addr string, _ *tls.Config) (net.Conn, error) {
			return net.Dial(network, addr)
		},
	}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	defer transport.CloseIdleConnections()

	// Concurrent requests with bodies of many sizes: HPACK with Huffman and the dynamic table,
	// request flow control, many streams at once on one connection.
	var wg sync.WaitGroup
	errs := make(chan error, 60)
	for i := 0; i < 60; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := make([]byte, (i*5003)%300000)
			rand.Read(body)
			req, _ := http.NewRequest("POST", base+"/echo", bytes.NewReader(body))
			req.Header.Set("Ts-Lb", "nodekey:"+strings.Repeat("ab", 32))
			req.Header.Set("X-Request", fmt.Sprintf("request-%d", i))
			res, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			got, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != 200 || !bytes.Equal(got, body) || res.Header.Get("X-Request") != fmt.Sprintf("request-%d", i) {
				errs <- fmt.Errorf("request %d: status %d, %d of %d bytes back, %v", i, res.StatusCode, len(got), len(body), err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fail("concurrent echoes", err)
	}
	fmt.Println("ok concurrent echoes")

	// A response larger than Go's 4 MiB stream window: it only completes if the server waits
	// for and honours the client's WINDOW_UPDATEs.
	res, err := client.Get(base + "/big")
	if err != nil {
		fail("large response", err)
	}
	n, err := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err != nil || n != 5<<20 {
		fail("large response", fmt.Errorf("%d bytes, %v", n, err))
	}
	fmt.Println("ok large response")

	// A long poll cancelled by the client mid-stream (RST_STREAM CANCEL), as a map poll is.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/stream", strings.NewReader(`{"Stream":true}`))
	res, err = client.Do(req)
	if err != nil {
		fail("cancelled long poll", err)
	}
	if _, err := io.ReadFull(res.Body, make([]byte, 20000)); err != nil {
		fail("cancelled long poll", err)
	}
	cancel()
	res.Body.Close()
	fmt.Println("ok cancelled long poll")

	// Idle past ReadIdleTimeout: the transport PINGs and closes the connection if no ACK comes;
	// the next request must still go over the same, healthy connection.
	time.Sleep(3500 * time.Millisecond)
	res, err = client.Post(base+"/echo", "text/plain", strings.NewReader("after idle"))
	if err != nil {
		fail("request after idle pings", err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(got) != "after idle" {
		fail("request after idle pings", fmt.Errorf("got %q", got))
	}
	fmt.Println("ok request after idle pings")

	// A body over the server's limit is answered (413), and the connection keeps serving.
	res, err = client.Post(base+"/echo", "application/octet-stream", bytes.NewReader(make([]byte, 2<<20)))
	if err != nil {
		fail("body over the limit", err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 413 {
		fail("body over the limit", fmt.Errorf("status %d", res.StatusCode))
	}
	res, err = client.Post(base+"/echo", "text/plain", strings.NewReader("still here"))
	if err != nil {
		fail("body over the limit", err)
	}
	got, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if string(got) != "still here" {
		fail("body over the limit", fmt.Errorf("next request got %q", got))
	}
	fmt.Println("ok body over the limit")
}
