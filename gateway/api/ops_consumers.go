package api

import (
	"context"
	"errors"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/weir-gateway/weir/shards"
)

// consumerNameRE is the Kinesis ConsumerName pattern. Forwarder
// watermarks ("forwarder:<target>") are consumers too but are not
// registered through the API.
var consumerNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)

// consumerRefs resolves StreamARN (or, as a weir extension, StreamName) and
// ConsumerName, or a ConsumerARN.
func (s *Server) consumerRef(req *request, in consumerRef) (stream, name string, err error) {
	if in.ConsumerARN != "" {
		st, n, ok := consumerFromARN(in.ConsumerARN)
		if !ok {
			return "", "", invalidArg("ConsumerARN %q is not a Kinesis consumer ARN", in.ConsumerARN)
		}
		return st, n, s.allow(req, st)
	}
	stream, err = s.named(req, streamRef{StreamName: in.StreamName, StreamARN: in.StreamARN})
	if err != nil {
		return "", "", err
	}
	if in.ConsumerName == "" {
		return "", "", validation("either ConsumerARN or StreamARN and ConsumerName are required")
	}
	return stream, in.ConsumerName, nil
}

func (s *Server) consumerJSON(ci shards.ConsumerInfo) consumerJSON {
	return consumerJSON{ConsumerName: ci.Name, ConsumerARN: s.consumerARN(ci),
		ConsumerStatus: ci.Status, ConsumerCreationTimestamp: timeOf(ci.Created)}
}

func (s *Server) registerConsumer(_ context.Context, req *request) (any, error) {
	var in consumerRef
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	stream, err := s.named(req, streamRef{StreamName: in.StreamName, StreamARN: in.StreamARN})
	if err != nil {
		return nil, err
	}
	if !consumerNameRE.MatchString(in.ConsumerName) {
		return nil, validation("ConsumerName %q must be 1-128 characters from [a-zA-Z0-9_.-]", in.ConsumerName)
	}
	if _, err := s.store.Stream(stream); err != nil {
		return nil, notFoundStream(stream, s, err)
	}
	ci, err := s.store.Checkpoints().Register(stream, in.ConsumerName)
	if errors.Is(err, shards.ErrConsumerExists) {
		return nil, newError(400, errResourceInUse, "Consumer %s under stream %s already exists for account %s.", in.ConsumerName, stream, s.account)
	}
	if err != nil {
		return nil, err
	}
	return registerStreamConsumerOutput{Consumer: s.consumerJSON(ci)}, nil
}

func (s *Server) describeConsumer(_ context.Context, req *request) (any, error) {
	var in consumerRef
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	stream, ci, err := s.resolveConsumer(req, in)
	if err != nil {
		return nil, err
	}
	c := s.consumerJSON(ci)
	return describeStreamConsumerOutput{ConsumerDescription: consumerDescription{
		ConsumerName: c.ConsumerName, ConsumerARN: c.ConsumerARN, ConsumerStatus: c.ConsumerStatus,
		ConsumerCreationTimestamp: c.ConsumerCreationTimestamp, StreamARN: s.streamARN(stream)}}, nil
}

// resolveConsumer finds the registered consumer a request names. A
// ConsumerARN must be the consumer's current one: the ARN of a consumer
// that was deregistered and registered again under the same name (its
// creation time differs) is ResourceNotFoundException, as in Kinesis.
func (s *Server) resolveConsumer(req *request, in consumerRef) (string, shards.ConsumerInfo, error) {
	stream, name, err := s.consumerRef(req, in)
	if err != nil {
		return "", shards.ConsumerInfo{}, err
	}
	ci, err := s.consumer(stream, name)
	if err != nil {
		return "", ci, err
	}
	if in.ConsumerARN != "" && !sameConsumerARN(in.ConsumerARN, ci) {
		return "", ci, notFound("Consumer %s under account %s not found.", in.ConsumerARN, s.account)
	}
	return stream, ci, nil
}

// sameConsumerARN compares the creation time an ARN ends with (the part
// that tells registrations of one name apart) with the consumer's.
func sameConsumerARN(arn string, ci shards.ConsumerInfo) bool {
	i := strings.LastIndexByte(arn, ':')
	return i >= 0 && arn[i+1:] == strconv.FormatInt(ci.Created.Unix(), 10)
}

// consumer looks a registered consumer up, phrasing "not found" as Kinesis.
func (s *Server) consumer(stream, name string) (shards.ConsumerInfo, error) {
	if _, err := s.store.Stream(stream); err != nil {
		return shards.ConsumerInfo{}, notFoundStream(stream, s, err)
	}
	ci, err := s.store.Checkpoints().Consumer(stream, name)
	if errors.Is(err, shards.ErrConsumerNotFound) {
		return ci, notFound("Consumer %s under stream %s not found for account %s.", name, stream, s.account)
	}
	return ci, err
}

func (s *Server) listConsumers(_ context.Context, req *request) (any, error) {
	var in listStreamConsumersInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	limit, err := limitArg("maxResults", in.MaxResults, 100, 10000)
	if err != nil {
		return nil, err
	}
	var tok pageToken
	if in.NextToken != "" {
		if tok, err = s.sign.decodeToken(in.NextToken, s.now()); err != nil {
			return nil, err
		}
		if err := s.allow(req, tok.Stream); err != nil {
			return nil, err
		}
	} else {
		if tok.Stream, err = s.named(req, streamRef{StreamName: in.StreamName, StreamARN: in.StreamARN}); err != nil {
			return nil, err
		}
	}
	if _, err := s.store.Stream(tok.Stream); err != nil {
		return nil, notFoundStream(tok.Stream, s, err)
	}
	all := s.store.Checkpoints().Consumers(tok.Stream)
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	out := listStreamConsumersOutput{Consumers: []consumerJSON{}}
	for _, ci := range all {
		if ci.Name <= tok.After {
			continue
		}
		if len(out.Consumers) == limit {
			next := tok
			next.Issued = s.now().UnixMilli()
			next.After = out.Consumers[len(out.Consumers)-1].ConsumerName
			out.NextToken = s.sign.encodeToken(next)
			break
		}
		out.Consumers = append(out.Consumers, s.consumerJSON(ci))
	}
	return out, nil
}

func (s *Server) deregisterConsumer(_ context.Context, req *request) (any, error) {
	var in consumerRef
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	stream, ci, err := s.resolveConsumer(req, in)
	if err != nil {
		return nil, err
	}
	if err := s.store.Checkpoints().Deregister(stream, ci.Name); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}
