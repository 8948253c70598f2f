package main

import (
	"bufio"
	"context"
	"crypto/tls"
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

// conf, when set, makes each a TLS device (see benchEnv.deviceTLS).
func dialIdle(ctx context.Context, addr string, n int, conf func(id string) (*tls.Config, error)) (*idleConns, error) {
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
			c, err := dialDevice(ctx, addr, fmt.Sprintf("idle-%06d", i+1), conf)
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

// publishEach makes every idle device publish one QoS 1 message of size
// bytes and wait for its PUBACK, 64 devices at a time: the "recently
// active" device of issue 12, whose goroutines grew while publishing.
func (ic *idleConns) publishEach(size int) error {
	errc := make(chan error, len(ic.conns))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	payload := make([]byte, size)
	for i, c := range ic.conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := publishQoS1(c, fmt.Sprintf("devices/idle-%06d/telemetry", i+1), payload); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// publishQoS1 sends one MQTT 3.1.1 QoS 1 PUBLISH (packet id 1) and reads
// its PUBACK.
func publishQoS1(c net.Conn, topic string, payload []byte) error {
	n := 2 + len(topic) + 2 + len(payload)
	pkt := []byte{0x32}
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
	pkt = append(pkt, byte(len(topic)>>8), byte(len(topic)))
	pkt = append(pkt, topic...)
	pkt = append(pkt, 0, 1)
	pkt = append(pkt, payload...)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(pkt); err != nil {
		return err
	}
	var ack [4]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return fmt.Errorf("%s: PUBACK: %w", topic, err)
	}
	if ack[0] != 0x40 || ack[1] != 2 || ack[3] != 1 {
		return fmt.Errorf("%s: want PUBACK for id 1, got % x", topic, ack)
	}
	return nil
}
