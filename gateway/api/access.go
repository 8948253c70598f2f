package api

import (
	"context"
	"net/http"
	"net/url"
)

// Access control. With api.credentials_file set, every request is
// authenticated (sigv4.go) as one access key, and each operation needs one
// permission of that key on the stream it names:
//
//   - read: everything that only looks (Describe*, List*, GetShardIterator,
//     GetRecords, DescribeGateway) and the consumer's own progress
//     (CommitCheckpoint, GetCheckpoints): a reader must be able to
//     checkpoint without being able to write records.
//   - write: PutRecord, PutRecords.
//   - admin: CreateStream, DeleteStream, SplitShard, MergeShards,
//     UpdateShardCount, retention changes, Register/DeregisterStreamConsumer,
//     and CommitCheckpoint of a forwarder's checkpoint (forwarder:<target>):
//     moving it forward makes the forwarder skip records.
//
// The permission of each operation is in Server.operations, the one table.
// A stream is named by StreamName, StreamARN, ConsumerARN, a NextToken or a
// shard iterator; each is checked where the handler resolves it (named,
// stream, allow). ListStreams and DescribeGateway without a stream list only
// the streams the key may read: unlike IAM, where ListStreams is
// account-wide, a scoped key does not learn the names of other streams.

// identityKey carries the authenticated access key id in a context.
type identityKey struct{}

// AccessKeyID returns the access key a request was authenticated with, ""
// when credentials are not configured.
func AccessKeyID(ctx context.Context) string {
	id, _ := ctx.Value(identityKey{}).(string)
	return id
}

// authenticate checks the request's signature against the loaded keys.
func (s *Server) authenticate(r *http.Request, body []byte) (*credential, *authFailure) {
	creds := s.creds.Load()
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, authErr(reasonMalformed, errIncompleteSig, "the query string is malformed: %v", err)
	}
	sig, f := parseSigV4(r, q)
	if f != nil {
		return nil, f
	}
	c, ok := creds.keys[sig.accessKey]
	if !ok {
		f := authErr(reasonUnknownKey, errUnrecognized, msgUnrecognizedToken)
		f.key = sig.accessKey
		return nil, f
	}
	if f := sig.checkScope(r, q, s.now()); f != nil {
		f.key = c.id
		return nil, f
	}
	if f := sig.verify(r, q, body, creds.signingKey(c, sig.date, sig.region)); f != nil {
		f.key = c.id
		return nil, f
	}
	return c, nil
}

// denied is the AccessDeniedException of a key lacking a permission, in
// the words of IAM.
func (s *Server) denied(req *request, resource string) *authFailure {
	f := authErr(reasonDenied, errAccessDenied, "User: %s is not authorized to perform: kinesis:%s on resource: %s because its api credentials grant %s",
		req.who.id, req.action, resource, req.who.scope())
	f.key = req.who.id
	return f
}

// allow checks the request's key against a stream it names, with the
// operation's permission.
func (s *Server) allow(req *request, stream string) error {
	return s.allowPerm(req, stream, req.perm)
}

func (s *Server) allowPerm(req *request, stream string, p permission) error {
	if req.who == nil || (req.who.perms&p != 0 && req.who.mayUse(stream)) {
		return nil
	}
	return s.denied(req, s.streamARN(stream))
}

// visible reports whether a listing shows a stream to the request's key.
func (s *Server) visible(req *request, stream string) bool {
	return req.who == nil || (req.who.perms&permRead != 0 && req.who.mayUse(stream))
}

// allowListing checks a listing that names no stream: the key needs
// read on some stream.
func (s *Server) allowListing(req *request) error {
	if req.who == nil || req.who.perms&permRead != 0 {
		return nil
	}
	return s.denied(req, s.streamARN("*"))
}

// named resolves StreamName/StreamARN and checks the key may use it.
func (s *Server) named(req *request, ref streamRef) (string, error) {
	name, err := streamName(ref)
	if err != nil {
		return "", err
	}
	if err := s.allow(req, name); err != nil {
		return "", err
	}
	return name, nil
}
