package console

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/weir-gateway/weir/gateway/api"
)

// Server-sent events. Every open page holds one /console/api/events
// stream; the sampler encodes each overview once and the hub hands the
// same bytes to every subscriber. A subscriber that does not keep up
// loses events (its queue is small), never slows the sampler.

type event struct {
	name string
	data []byte
}

// maxSubscribers bounds the open event streams (each costs a goroutine
// and a 4-event queue): a tab left open by each operator, not a fleet.
const maxSubscribers = 64

type hub struct {
	mu     sync.Mutex
	subs   map[chan event]struct{}
	closed bool
}

func newHub() *hub { return &hub{subs: map[chan event]struct{}{}} }

func (h *hub) subscribe() (chan event, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.subs) >= maxSubscribers {
		return nil, false
	}
	ch := make(chan event, 4)
	h.subs[ch] = struct{}{}
	return ch, true
}

func (h *hub) unsubscribe(ch chan event) {
	h.mu.Lock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
	h.mu.Unlock()
}

func (h *hub) broadcast(e event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// close ends every stream.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}

// sse starts an event stream response.
func sse(w http.ResponseWriter) (http.Flusher, error) {
	fl, ok := w.(http.Flusher)
	if !ok {
		return nil, errorf(http.StatusInternalServerError, "streaming unsupported")
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fl.Flush() // the page knows at once that the stream is open
	return fl, nil
}

func writeEvent(w http.ResponseWriter, fl http.Flusher, e event) error {
	if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.name, e.data); err != nil {
		return err
	}
	fl.Flush()
	return nil
}

// serveEvents streams the overview every interval, starting with the
// latest.
func (c *Console) serveEvents(w http.ResponseWriter, r *http.Request, _ api.Grant) error {
	ch, ok := c.hub.subscribe()
	if !ok {
		return errorf(http.StatusServiceUnavailable, "too many open console pages")
	}
	defer c.hub.unsubscribe(ch)
	fl, err := sse(w)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "retry: %d\n\n", (c.every + time.Second).Milliseconds())
	if b, err := jsonBytes(c.overview()); err == nil {
		if writeEvent(w, fl, event{"overview", b}) != nil {
			return nil
		}
	}
	for {
		select {
		case <-r.Context().Done():
			return nil
		case e, ok := <-ch:
			if !ok {
				return nil
			}
			if writeEvent(w, fl, e) != nil {
				return nil
			}
		}
	}
}
