package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// connectPacket is a minimal MQTT 3.1.1 CONNECT: clean session, no
// keep-alive (so idle devices need no PINGREQ), the given client id.
func connectPacket(clientID string) []byte {
	vh := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 0}
	pl := append([]byte{byte(len(clientID) >> 8), byte(len(clientID))}, clientID...)
	n := len(vh) + len(pl)
	pkt := []byte{0x10}
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		pkt = append(pkt, b)
		if n == 0 {
			break
		}
	}
	return append(append(pkt, vh...), pl...)
}

// idleConns connects n idle devices with raw sockets: a paho client costs
// ~10 goroutines and tens of KiB on the client side, which would crowd the
// broker under test on a small machine; a raw connection costs one fd.
type idleConns struct {
	conns []net.Conn
}

func dialIdle(ctx context.Context, addr string, n int) (*idleConns, error) {
	ic := &idleConns{conns: make([]net.Conn, n)}
	errc := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialOne(ctx, addr, fmt.Sprintf("idle-%06d", i+1))
			if err != nil {
				errc <- err
				return
			}
			ic.conns[i] = c
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		ic.Close()
		return nil, err
	}
	return ic, nil
}

func dialOne(ctx context.Context, addr, id string) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := c.Write(connectPacket(id)); err != nil {
		c.Close()
		return nil, err
	}
	var ack [4]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: CONNACK: %w", id, err)
	}
	if ack[0] != 0x20 || ack[3] != 0 {
		c.Close()
		return nil, fmt.Errorf("%s: CONNACK % x: refused", id, ack)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

func (ic *idleConns) Close() {
	for _, c := range ic.conns {
		if c != nil {
			c.Close()
		}
	}
}

// rssKiB reads a process's resident set size from /proc.
func rssKiB(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
