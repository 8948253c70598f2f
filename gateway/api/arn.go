package api

import (
	"fmt"
	"strings"

	"github.com/weir-gateway/weir/shards"
)

// streamARN renders arn:aws:kinesis:<region>:<account>:stream/<name>.
func (s *Server) streamARN(name string) string {
	return fmt.Sprintf("arn:aws:kinesis:%s:%s:stream/%s", s.region, s.account, name)
}

// consumerARN renders the Kinesis consumer ARN:
// <stream ARN>/consumer/<name>:<creation unix seconds>.
func (s *Server) consumerARN(ci shards.ConsumerInfo) string {
	return fmt.Sprintf("%s/consumer/%s:%d", s.streamARN(ci.Stream), ci.Name, ci.Created.Unix())
}

// streamNameFromARN accepts any partition, region and account: a client
// configured for another region still names the right stream, and there is
// only one account here.
func streamNameFromARN(arn string) (string, bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "kinesis" {
		return "", false
	}
	name, ok := strings.CutPrefix(parts[5], "stream/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	return name, true
}

// consumerFromARN splits <stream ARN>/consumer/<name>:<created>.
func consumerFromARN(arn string) (stream, name string, ok bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "kinesis" {
		return "", "", false
	}
	rest, ok := strings.CutPrefix(parts[5], "stream/")
	if !ok {
		return "", "", false
	}
	stream, tail, ok := strings.Cut(rest, "/consumer/")
	if !ok || stream == "" || tail == "" {
		return "", "", false
	}
	name = tail
	if i := strings.LastIndexByte(tail, ':'); i > 0 && isDigits(tail[i+1:]) {
		name = tail[:i]
	}
	return stream, name, true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// streamName resolves StreamName/StreamARN; both may be given if they
// agree.
func streamName(ref streamRef) (string, error) {
	name := ref.StreamName
	if ref.StreamARN != "" {
		n, ok := streamNameFromARN(ref.StreamARN)
		if !ok {
			return "", invalidArg("StreamARN %q is not a Kinesis stream ARN (arn:aws:kinesis:<region>:<account>:stream/<name>)", ref.StreamARN)
		}
		if name != "" && name != n {
			return "", invalidArg("StreamName %q and StreamARN %q name different streams", name, ref.StreamARN)
		}
		name = n
	}
	if name == "" {
		return "", validation("either StreamName or StreamARN is required")
	}
	return name, nil
}

// stream resolves a reference to an open stream the request's key may use.
func (s *Server) stream(req *request, ref streamRef) (*shards.Stream, error) {
	name, err := s.named(req, ref)
	if err != nil {
		return nil, err
	}
	st, err := s.store.Stream(name)
	if err != nil {
		return nil, notFoundStream(name, s, err)
	}
	return st, nil
}

// notFoundStream phrases a missing stream as Kinesis does; other store
// errors pass through.
func notFoundStream(name string, s *Server, err error) error {
	if isNotFound(err) {
		return notFound("Stream %s under account %s not found.", name, s.account)
	}
	return err
}
