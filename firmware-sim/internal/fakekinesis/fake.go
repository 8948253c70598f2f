package fakekinesis

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Server holds one stream's shards and serves them.
type Server struct {
	Stream string
	// PageSize is the most records one GetRecords returns (default 2, to
	// exercise paging).
	PageSize int

	mu     sync.Mutex
	shards []*shard // listed in this order
	calls  map[string]int
	signed bool
}

type shard struct {
	id, parent string
	closed     bool
	recs       []rec
}

type rec struct {
	key  string
	data []byte
}

// New serves stream name; add shards before use.
func New(stream string) *Server {
	return &Server{Stream: stream, calls: map[string]int{}, signed: true}
}

// AddShard adds a shard, listed after the ones already added. A closed
// shard ends (GetRecords returns no next iterator) once read.
func (s *Server) AddShard(id, parent string, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shards = append(s.shards, &shard{id: id, parent: parent, closed: closed})
}

// Put appends a record to a shard.
func (s *Server) Put(shardID, key string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sh := range s.shards {
		if sh.id == shardID {
			sh.recs = append(sh.recs, rec{key, append([]byte(nil), data...)})
			return
		}
	}
	panic("fakekinesis: no shard " + shardID)
}

// Calls is how many times each operation was called.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Signed reports whether every request carried an Authorization header.
func (s *Server) Signed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signed
}

func fail(w http.ResponseWriter, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = fmt.Fprintf(w, `{"__type":%q,"message":%q}`, typ, msg)
}

// ServeHTTP implements the three operations.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "Kinesis_20131202.")
	s.calls[op]++
	if r.Header.Get("Authorization") == "" {
		s.signed = false
	}
	var in map[string]any
	body, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(body, &in)
	out := map[string]any{}
	switch op {
	case "ListShards":
		start := 0
		if tok, ok := in["NextToken"].(string); ok {
			start, _ = strconv.Atoi(tok)
		} else if in["StreamName"] != s.Stream {
			fail(w, "ResourceNotFoundException", "Stream not found")
			return
		}
		var list []any
		if start < len(s.shards) {
			sh := s.shards[start]
			m := map[string]any{"ShardId": sh.id,
				"HashKeyRange":        map[string]string{"StartingHashKey": "0", "EndingHashKey": "340282366920938463463374607431768211455"},
				"SequenceNumberRange": map[string]string{"StartingSequenceNumber": "1"}}
			if sh.parent != "" {
				m["ParentShardId"] = sh.parent
			}
			list = append(list, m)
		}
		out["Shards"] = list
		if start+1 < len(s.shards) {
			out["NextToken"] = strconv.Itoa(start + 1)
		}
	case "GetShardIterator":
		id, _ := in["ShardId"].(string)
		if s.find(id) == nil {
			fail(w, "ResourceNotFoundException", "Shard not found")
			return
		}
		out["ShardIterator"] = id + "|0"
	case "GetRecords":
		it, _ := in["ShardIterator"].(string)
		id, pos, _ := strings.Cut(it, "|")
		p, _ := strconv.Atoi(pos)
		sh := s.find(id)
		if sh == nil {
			fail(w, "InvalidArgumentException", "bad iterator")
			return
		}
		recs := []any{}
		page := s.PageSize
		if page <= 0 {
			page = 2
		}
		for ; p < len(sh.recs) && len(recs) < page; p++ {
			recs = append(recs, map[string]any{"SequenceNumber": strconv.Itoa(p + 1), "PartitionKey": sh.recs[p].key,
				"Data": sh.recs[p].data, "ApproximateArrivalTimestamp": 1.7e9})
		}
		out["Records"] = recs
		out["MillisBehindLatest"] = 0
		if sh.closed && p >= len(sh.recs) {
			out["NextShardIterator"] = nil
		} else {
			out["NextShardIterator"] = id + "|" + strconv.Itoa(p)
		}
	default:
		fail(w, "UnknownOperationException", op)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) find(id string) *shard {
	for _, sh := range s.shards {
		if sh.id == id {
			return sh
		}
	}
	return nil
}
