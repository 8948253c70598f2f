package apiclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestErrorDecoding(t *testing.T) {
	long := strings.Repeat("x", 500)
	cases := []struct {
		name    string
		status  int
		header  string // X-Amzn-ErrorType
		body    string
		typ     string
		message string
	}{
		{"plain", 400, "", `{"__type":"ResourceNotFoundException","message":"Stream s not found"}`, "ResourceNotFoundException", "Stream s not found"},
		{"namespace prefix", 400, "", `{"__type":"com.amazonaws.kinesis.v20131202#ExpiredIteratorException","message":"old"}`, "ExpiredIteratorException", "old"},
		{"capital Message", 400, "", `{"__type":"ValidationException","Message":"bad"}`, "ValidationException", "bad"},
		{"body wins over header", 400, "Other", `{"__type":"InvalidArgumentException","message":"m"}`, "InvalidArgumentException", "m"},
		{"header fallback", 403, "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/", `{"message":"no"}`, "AccessDeniedException", "no"},
		{"header, empty body", 400, "MissingAuthenticationTokenException", ``, "MissingAuthenticationTokenException", ""},
		{"non-JSON body", 502, "", "<html>Bad Gateway</html>\n", "", "<html>Bad Gateway</html>"},
		{"non-JSON long body is cut", 500, "", long, "", long[:maxMessage] + "..."},
		{"5xx with type", 503, "", `{"__type":"ServiceUnavailable","message":"closing"}`, "ServiceUnavailable", "closing"},
		{"JSON of another shape", 500, "", `[1,2]`, "", "[1,2]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			noCredentials(t)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tc.header != "" {
					w.Header().Set("X-Amzn-ErrorType", tc.header)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c := newClient(t, Options{Endpoint: srv.URL})
			err := c.Kinesis(context.Background(), "ListStreams", struct{}{}, nil)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %#v, want *Error", err)
			}
			if e.Status != tc.status || e.Type != tc.typ || e.Message != tc.message || e.Target != "Kinesis_20131202.ListStreams" {
				t.Fatalf("got %+v, want status %d type %q message %q", e, tc.status, tc.typ, tc.message)
			}
			if TypeOf(err) != tc.typ {
				t.Errorf("TypeOf = %q", TypeOf(err))
			}
			if want := tc.status >= 500; e.Temporary() != want {
				t.Errorf("Temporary() = %v for %d", e.Temporary(), tc.status)
			}
			if !strings.Contains(e.Error(), tc.message) {
				t.Errorf("Error() %q lacks the message", e.Error())
			}
		})
	}
}

func TestTemporary(t *testing.T) {
	for typ, want := range map[string]bool{"ProvisionedThroughputExceededException": true, "LimitExceededException": true,
		"ThrottlingException": true, "ResourceNotFoundException": false, "": false} {
		if got := (&Error{Status: 400, Type: typ}).Temporary(); got != want {
			t.Errorf("Temporary() of 400 %q = %v", typ, got)
		}
	}
}

func FuzzDecodeError(f *testing.F) {
	f.Add(400, "", []byte(`{"__type":"a#B","message":"m"}`))
	f.Add(500, "X:y", []byte(`not json`))
	f.Add(403, "AccessDeniedException", []byte(`{"Message":1}`))
	f.Fuzz(func(t *testing.T, status int, header string, body []byte) {
		h := http.Header{}
		h.Set("X-Amzn-ErrorType", header)
		e := decodeError("T", status, h, body)
		if strings.Contains(e.Type, "#") && !strings.Contains(h.Get("X-Amzn-ErrorType"), "#") {
			t.Fatalf("type %q keeps a namespace", e.Type)
		}
		if utf8.ValidString(string(body)) && len(e.Message) > len(body)+len("...") {
			t.Fatalf("message %q longer than the body", e.Message)
		}
		_ = e.Error()
	})
}
