package api

import (
	"encoding/json"
	"net/http"

	"github.com/weir-gateway/weir/shards"
)

// FailedShard is a shard whose log has a sticky I/O error: it takes no
// more appends until the gateway is restarted (see wal's failure rules).
type FailedShard struct {
	Stream string `json:"stream"`
	Shard  string `json:"shard"`
	Error  string `json:"error"`
}

// FailedShards lists the store's failed shards.
func FailedShards(store *shards.Store) []FailedShard {
	var bad []FailedShard
	for _, st := range store.Streams() {
		for _, info := range st.Shards() {
			sh, err := st.Shard(info.ID)
			if err != nil {
				continue
			}
			if err := sh.Err(); err != nil {
				bad = append(bad, FailedShard{Stream: st.Name(), Shard: info.ID, Error: err.Error()})
			}
		}
	}
	return bad
}

// Readiness is the body of /readyz.
type Readiness struct {
	Status string `json:"status"` // "ready" or "not ready"
	// NotReady says, one reason each, what keeps the gateway from being
	// ready: a failed shard, storage or a listener that is not up, the
	// gateway stopping.
	NotReady     []string      `json:"not_ready,omitempty"`
	FailedShards []FailedShard `json:"failed_shards,omitempty"`
	// Forwarders that are not running (backoff, paused, stopped) are
	// reported here but do not make the gateway not ready: ingest and
	// local reads work, and records wait on disk for the upstream.
	Forwarders []ForwarderState `json:"forwarders,omitempty"`
}

// ForwarderState is a forwarder that is not running normally.
type ForwarderState struct {
	Stream       string `json:"stream"`
	TargetStream string `json:"target_stream"`
	State        string `json:"state"`
	LastError    string `json:"last_error,omitempty"`
}

// Ready reports whether r has no reason to be not ready.
func (r Readiness) Ready() bool { return len(r.NotReady) == 0 }

// readiness gathers what /readyz answers.
func (s *Server) readiness() Readiness {
	r := Readiness{FailedShards: s.failedShards()}
	for _, f := range r.FailedShards {
		r.NotReady = append(r.NotReady, "shard "+f.Stream+"/"+f.Shard+" failed: "+f.Error)
	}
	if s.notReady != nil {
		r.NotReady = append(r.NotReady, s.notReady()...)
	}
	select {
	case <-s.closing:
		r.NotReady = append(r.NotReady, "api: closing")
	default:
	}
	if s.forwarders != nil {
		for _, f := range s.forwarders() {
			if f.State != "running" {
				r.Forwarders = append(r.Forwarders, ForwarderState{Stream: f.Stream, TargetStream: f.TargetStream, State: f.State, LastError: f.LastError})
			}
		}
	}
	r.Status = "ready"
	if !r.Ready() {
		r.Status = "not ready"
	}
	return r
}

// serveReady is GET /readyz: 200 when storage is open, the listeners are
// up and no shard has failed; 503 otherwise. The JSON body says why
// either way, so a load balancer uses the code and an operator the body.
func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	r := s.readiness()
	status := http.StatusOK
	if !r.Ready() {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, r)
}

// serveHealth is GET /healthz: the process is alive and answering. It is
// a liveness check, for a watchdog that restarts a hung process; it does
// not turn 503 on a failed shard (a restart would not mend a disk; that
// is /readyz's job). The body is the one /healthz always had.
func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "streams": len(s.store.Streams())})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
