package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/fxamacker/cbor/v2"
)

// Content types of the two wire formats. A response always uses the
// request's format.
const (
	contentTypeJSON = "application/x-amz-json-1.1"
	contentTypeCBOR = "application/x-amz-cbor-1.1"
)

// codec is one of the two body formats. Request and response structs carry
// only `json` tags; fxamacker/cbor reads the same tags, so one set of types
// serves both formats. Blobs ([]byte) become base64 strings in JSON and
// byte strings in CBOR; timestamps are wireTime.
type codec int

const (
	codecJSON codec = iota
	codecCBOR
)

// codecOf picks the format from Content-Type. Anything that is not CBOR is
// read as JSON, which is what every client other than the Java SDK sends.
func codecOf(r *http.Request) codec {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case contentTypeCBOR, "application/cbor":
		return codecCBOR
	}
	return codecJSON
}

// servedContentType reports whether the request's Content-Type is one
// Kinesis reads (JSON 1.0/1.1, CBOR 1.1, or the plain types the SDKs'
// generic clients send); Kinesis answers any other with a 404.
func servedContentType(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case contentTypeJSON, "application/x-amz-json-1.0", "application/json", contentTypeCBOR, "application/cbor":
		return true
	}
	return false
}

func (c codec) contentType() string {
	if c == codecCBOR {
		return contentTypeCBOR
	}
	return contentTypeJSON
}

var (
	cborEnc, _ = cbor.EncOptions{}.EncMode()
	cborDec, _ = cbor.DecOptions{
		MaxArrayElements: 1 << 16,
		MaxMapPairs:      1 << 16,
		MaxNestedLevels:  16,
	}.DecMode()
)

// decode reads a request body into v. The dispatcher has already refused
// an empty one.
func (c codec) decode(body []byte, v any) error {
	var err error
	if c == codecCBOR {
		err = cborDec.Unmarshal(body, v)
	} else {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		return newError(http.StatusBadRequest, errSerialization, "cannot read the request body as %s: %s",
			c.name(), describeDecodeError(err))
	}
	return nil
}

func (c codec) name() string {
	if c == codecCBOR {
		return "CBOR"
	}
	return "JSON"
}

// describeDecodeError names the member whose type was wrong, which is what a
// client author needs, without Go type names.
func describeDecodeError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("member %s has the wrong type (%s)", te.Field, te.Value)
		}
		return fmt.Sprintf("a value has the wrong type (%s)", te.Value)
	}
	var ce *cbor.UnmarshalTypeError
	if errors.As(err, &ce) {
		return fmt.Sprintf("a value has the wrong type (%s)", ce.CBORType)
	}
	return err.Error()
}

// jsonStreamer is a response that writes its JSON in chunks straight to
// the connection (GetRecords: up to 10 MiB of data, 14 MB of JSON).
type jsonStreamer interface {
	writeJSON(w io.Writer, buf []byte) ([]byte, error)
}

// jsonAppender lets a hot response (GetRecords) write its JSON directly
// instead of through reflection.
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

// encode renders a response body.
func (c codec) encode(buf []byte, v any) ([]byte, error) {
	if v == nil {
		v = struct{}{}
	}
	if c == codecCBOR {
		b, err := cborEnc.Marshal(v)
		return append(buf, b...), err
	}
	if a, ok := v.(jsonAppender); ok {
		return a.appendJSON(buf), nil
	}
	b, err := json.Marshal(v)
	return append(buf, b...), err
}

// errorBody is the body of every error: `__type` is what SDKs dispatch on
// (they also read X-Amzn-ErrorType); both spellings of message are read by
// every SDK, Kinesis itself sends lower case.
type errorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}
