package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/weir-gateway/weir/integration/kinesalite"
)

type setup struct {
	t      *testing.T
	direct *kinesis.Client
	proxy  *Proxy
	via    *kinesis.Client // through the proxy, no SDK retries
	stream string
}

var streams int

func newSetup(t *testing.T, ep string, seed uint64, timeout time.Duration) *setup {
	t.Helper()
	s := &setup{t: t, direct: kinesalite.NewClient(ep)}
	streams++
	s.stream = fmt.Sprintf("s%d", streams)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := kinesalite.CreateStream(ctx, s.direct, s.stream, 2); err != nil {
		t.Fatal(err)
	}
	p, err := New(ep, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	s.proxy = p
	s.via = kinesis.New(kinesis.Options{Region: kinesalite.Region, Credentials: kinesalite.Credentials,
		BaseEndpoint: aws.String(p.URL()), Retryer: aws.NopRetryer{},
		HTTPClient: &http.Client{Timeout: timeout}})
	return s
}

func (s *setup) put(n int) (*kinesis.PutRecordsOutput, error) {
	var recs []types.PutRecordsRequestEntry
	for i := range n {
		recs = append(recs, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("k", i)), Data: []byte(fmt.Sprint("r", i))})
	}
	return s.via.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(s.stream), Records: recs})
}

func (s *setup) stored() []kinesalite.Record {
	s.t.Helper()
	recs, err := kinesalite.ReadAll(context.Background(), s.direct, s.stream)
	if err != nil {
		s.t.Fatal(err)
	}
	return recs
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestProxy(t *testing.T) {
	ep, _ := kinesalite.Start(t)

	t.Run("pass_through", func(t *testing.T) {
		s := newSetup(t, ep, 1, 5*time.Second)
		out, err := s.put(10)
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 || len(s.stored()) != 10 {
			t.Fatalf("%v %v", out, err)
		}
		if c := s.proxy.Counters(); c.PutRequests != 1 || c.RecordsForwarded != 10 || c.Forwarded != 1 {
			t.Fatalf("counters %+v", c)
		}
	})

	t.Run("record_throttle", func(t *testing.T) {
		s := newSetup(t, ep, 7, 5*time.Second)
		s.proxy.Set(Faults{RecordThrottle: 0.4})
		out, err := s.put(100)
		if err != nil {
			t.Fatal(err)
		}
		failed := 0
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				if *r.ErrorCode != "ProvisionedThroughputExceededException" || r.SequenceNumber != nil {
					t.Fatalf("entry %d: %+v", i, r)
				}
				failed++
			} else if r.SequenceNumber == nil || r.ShardId == nil {
				t.Fatalf("entry %d has neither error nor sequence number", i)
			}
		}
		c := s.proxy.Counters()
		if failed == 0 || failed == 100 || int(aws.ToInt32(out.FailedRecordCount)) != failed || int(c.RecordsThrottled) != failed {
			t.Fatalf("failed %d, FailedRecordCount %d, counter %d", failed, aws.ToInt32(out.FailedRecordCount), c.RecordsThrottled)
		}
		stored := s.stored()
		if len(stored) != 100-failed {
			t.Fatalf("kinesalite holds %d, want %d: throttled records reached it", len(stored), 100-failed)
		}
		okData := map[string]bool{}
		for i, r := range out.Records {
			if r.ErrorCode == nil {
				okData[fmt.Sprint("r", i)] = true
			}
		}
		for _, r := range stored {
			if !okData[string(r.Data)] {
				t.Fatalf("kinesalite holds %s, reported failed", r.Data)
			}
		}
		// Same seed, same choices.
		s2 := newSetup(t, ep, 7, 5*time.Second)
		s2.proxy.Set(Faults{RecordThrottle: 0.4})
		out2, _ := s2.put(100)
		for i := range out.Records {
			if (out.Records[i].ErrorCode == nil) != (out2.Records[i].ErrorCode == nil) {
				t.Fatalf("seeded runs differ at entry %d", i)
			}
		}
	})

	t.Run("record_throttle_by_key", func(t *testing.T) {
		s := newSetup(t, ep, 3, 5*time.Second)
		s.proxy.Set(Faults{RecordThrottle: 1, ThrottleKey: func(k string) bool { return k == "k3" || k == "k5" }})
		out, err := s.put(10)
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 2 || out.Records[3].ErrorCode == nil || out.Records[5].ErrorCode == nil {
			t.Fatalf("%v %v", out, err)
		}
		s.proxy.Set(Faults{RecordThrottle: 1})
		out, err = s.put(3)
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 3 || len(s.stored()) != 8 {
			t.Fatalf("all throttled: %v %v, stored %d", out, err, len(s.stored()))
		}
	})

	wholeRequest := []struct {
		name   string
		faults Faults
		code   string // API error code, "" for a transport error
		stored bool
		count  func(Counters) int64
	}{
		{"request_throttle", Faults{RequestThrottle: 1}, "ProvisionedThroughputExceededException", false, func(c Counters) int64 { return c.RequestsThrottled }},
		{"5xx_before", Faults{ErrorBefore: 1}, "InternalFailure", false, func(c Counters) int64 { return c.ErrorsBefore }},
		{"5xx_after", Faults{ErrorAfter: 1}, "InternalFailure", true, func(c Counters) int64 { return c.ErrorsAfter }},
		{"reset", Faults{Reset: 1}, "", false, func(c Counters) int64 { return c.Resets }},
		{"reset_after", Faults{ResetAfter: 1}, "", true, func(c Counters) int64 { return c.ResetsAfter }},
		{"slow", Faults{Slow: 1, SlowDelay: 2 * time.Second}, "", true, func(c Counters) int64 { return c.Slowed }},
		{"not_found", Faults{NotFound: true}, "ResourceNotFoundException", false, func(c Counters) int64 { return c.NotFound }},
		{"down", Faults{Down: true}, "", false, func(c Counters) int64 { return c.Refused }},
	}
	for _, tc := range wholeRequest {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t, ep, 1, 300*time.Millisecond)
			s.proxy.Set(tc.faults)
			_, err := s.put(5)
			if err == nil {
				t.Fatal("no error")
			}
			if code(err) != tc.code {
				t.Fatalf("error %v: code %q, want %q", err, code(err), tc.code)
			}
			if tc.count(s.proxy.Counters()) != 1 {
				t.Fatalf("counters %+v", s.proxy.Counters())
			}
			time.Sleep(50 * time.Millisecond) // a forwarded request completes upstream
			if got := len(s.stored()); (got == 5) != tc.stored || (got != 0 && got != 5) {
				t.Fatalf("kinesalite holds %d records, stored=%v expected", got, tc.stored)
			}
			s.proxy.Set(Faults{})
			if out, err := s.put(5); err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
				t.Fatalf("after clearing the fault: %v %v", out, err)
			}
		})
	}

	t.Run("not_found_hits_every_operation", func(t *testing.T) {
		s := newSetup(t, ep, 1, 5*time.Second)
		s.proxy.Set(Faults{NotFound: true})
		_, err := s.via.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String(s.stream)})
		if code(err) != "ResourceNotFoundException" {
			t.Fatalf("ListShards: %v", err)
		}
	})
}
