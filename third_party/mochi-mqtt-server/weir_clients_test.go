package mqtt

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestGetByListenerWithWriters: listing a listener's clients while
// clients come and go must not deadlock. Upstream's GetByListener took
// the read lock twice; a writer waiting between the two blocks the second
// and the first forever (PATCHES.md, "A read lock taken twice").
func TestGetByListenerWithWriters(t *testing.T) {
	cl := NewClients()
	for i := 0; i < 50; i++ {
		c := &Client{ID: fmt.Sprint(i)}
		c.Net.Listener = "t1"
		cl.Add(c)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		stop := time.Now().Add(300 * time.Millisecond)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				_ = cl.GetByListener("t1")
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				c := &Client{ID: fmt.Sprint("w", i%10)}
				c.Net.Listener = "t1"
				cl.Add(c)
				cl.Delete(c.ID)
			}
		}()
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("GetByListener and Add/Delete deadlocked")
	}
}
