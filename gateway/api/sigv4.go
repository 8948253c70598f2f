package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// AWS Signature Version 4, verified as the AWS documentation ("Create a
// signed AWS API request") describes it, in both forms:
//
//   - header: Authorization: AWS4-HMAC-SHA256 Credential=AKID/20260101/
//     us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date;...,
//     Signature=<64 hex>, dated by X-Amz-Date (or Date);
//   - query (presigned): X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date,
//     X-Amz-SignedHeaders, X-Amz-Signature and optionally X-Amz-Expires.
//
// Choices, each the stricter reading of what AWS does:
//   - Any region is accepted (the client's configured one signs); the
//     service must be "kinesis".
//   - SignedHeaders must include host and the date header used, and
//     x-amz-target when the request has one (every SDK and the CLI sign
//     it; a presigned URL may carry it in the query string instead):
//     otherwise a captured DescribeStream could be replayed as
//     DeleteStream within the 5 minutes a signature lives.
//   - The canonical request always uses the SHA-256 of the body as
//     received, so a body changed after signing fails; an
//     x-amz-content-sha256 header, if sent, must equal it (UNSIGNED-PAYLOAD
//     is refused).
//   - A date more than 5 minutes from the gateway's clock is refused
//     (InvalidSignatureException "Signature expired: ..." as AWS words
//     it). A presigned request with X-Amz-Expires is valid from 5 minutes
//     before X-Amz-Date until X-Amz-Date + X-Amz-Expires (at most 7 days).
const (
	sigV4Algorithm  = "AWS4-HMAC-SHA256"
	sigV4Service    = "kinesis"
	sigV4Terminator = "aws4_request"
	amzDateLayout   = "20060102T150405Z"
	maxClockSkew    = 5 * time.Minute
	maxPresignTTL   = 7 * 24 * time.Hour
)

// Authentication exceptions, as Kinesis sends them (all HTTP 400).
const (
	errMissingToken      = "MissingAuthenticationTokenException"
	errIncompleteSig     = "IncompleteSignatureException"
	errUnrecognized      = "UnrecognizedClientException"
	errInvalidSignature  = "InvalidSignatureException"
	errAccessDenied      = "AccessDeniedException"
	msgUnrecognizedToken = "The security token included in the request is invalid."
	msgSignatureMismatch = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

// sigV4 is a parsed signature, of either form.
type sigV4 struct {
	accessKey, date, region, service, terminator string
	signedHeaders                                []string
	signature                                    string // hex, as sent
	amzDate                                      string // as sent (header form: X-Amz-Date or Date)
	when                                         time.Time
	expires                                      time.Duration // query form with X-Amz-Expires, else 0
	query                                        bool
}

// authFailure is an authentication refusal with the reason counted in
// /metrics (weir_api_auth_failures_total{reason}).
type authFailure struct {
	*apiError
	reason string
	key    string // the access key id, when one was given
}

// Unwrap lets toAPIError find the wire error.
func (f *authFailure) Unwrap() error { return f.apiError }

func authErr(reason, typ, format string, args ...any) *authFailure {
	return &authFailure{apiError: newError(http.StatusBadRequest, typ, format, args...), reason: reason}
}

// Reasons of weir_api_auth_failures_total.
const (
	reasonMissing      = "missing_signature"
	reasonMalformed    = "malformed_signature"
	reasonUnknownKey   = "unknown_key"
	reasonBadSignature = "bad_signature"
	reasonExpired      = "expired"
	reasonDenied       = "access_denied"
	reasonHost         = "host"
)

var authReasons = []string{reasonMissing, reasonMalformed, reasonUnknownKey, reasonBadSignature, reasonExpired, reasonDenied, reasonHost}

// parseSigV4 finds and parses the request's signature, of either form.
func parseSigV4(r *http.Request, q url.Values) (*sigV4, *authFailure) {
	h := r.Header.Get("Authorization")
	_, inQuery := q["X-Amz-Algorithm"]
	switch {
	case h != "" && inQuery:
		return nil, authErr(reasonMalformed, errIncompleteSig, "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.")
	case inQuery:
		return parseQueryAuth(q)
	case h != "":
		sig, f := parseAuthorization(h)
		if f != nil {
			return nil, f
		}
		if err := sig.dateFromHeaders(r.Header); err != nil {
			return nil, err
		}
		return sig, nil
	}
	return nil, authErr(reasonMissing, errMissingToken, "Missing Authentication Token")
}

// parseAuthorization parses the Authorization header's value. The date
// comes from other headers (dateFromHeaders).
func parseAuthorization(h string) (*sigV4, *authFailure) {
	alg, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if alg != sigV4Algorithm {
		return nil, authErr(reasonMalformed, errIncompleteSig, "Unsupported AWS 'algorithm': %q (only %s is accepted)", truncate(alg, 64), sigV4Algorithm)
	}
	var cred, signed, sig string
	var haveCred, haveSigned, haveSig bool
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			if strings.TrimSpace(part) == "" {
				continue
			}
			return nil, authErr(reasonMalformed, errIncompleteSig, "Authorization header requires each component to be key=value, got %q.", truncate(part, 64))
		}
		switch k {
		case "Credential":
			cred, haveCred = v, true
		case "SignedHeaders":
			signed, haveSigned = v, true
		case "Signature":
			sig, haveSig = v, true
		}
	}
	var missing []string
	for _, m := range []struct {
		have bool
		name string
	}{{haveCred, "Credential"}, {haveSigned, "SignedHeaders"}, {haveSig, "Signature"}} {
		if !m.have {
			missing = append(missing, "Authorization header requires '"+m.name+"' parameter.")
		}
	}
	if len(missing) > 0 {
		return nil, authErr(reasonMalformed, errIncompleteSig, "%s Authorization=%s", strings.Join(missing, " "), truncate(h, 200))
	}
	s := &sigV4{signature: sig}
	if f := s.setCredential(cred); f != nil {
		return nil, f
	}
	if f := s.setSignedHeaders(signed); f != nil {
		return nil, f
	}
	return s, nil
}

// dateFromHeaders takes the signing time from X-Amz-Date, or from Date.
func (s *sigV4) dateFromHeaders(h http.Header) *authFailure {
	if v := h.Get("X-Amz-Date"); v != "" {
		return s.setDate(v, "x-amz-date")
	}
	if v := h.Get("Date"); v != "" {
		t, err := http.ParseTime(v)
		if err != nil {
			return authErr(reasonMalformed, errIncompleteSig, "Date header %q is not an HTTP date.", truncate(v, 64))
		}
		if !s.signs("date") {
			return authErr(reasonMalformed, errIncompleteSig, "The date header must be signed (SignedHeaders lacks 'date').")
		}
		s.amzDate, s.when = t.UTC().Format(amzDateLayout), t.UTC()
		return nil
	}
	return authErr(reasonMalformed, errIncompleteSig, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
}

func (s *sigV4) setDate(v, header string) *authFailure {
	t, err := time.Parse(amzDateLayout, v)
	if err != nil {
		return authErr(reasonMalformed, errIncompleteSig, "%s %q is not an ISO-8601 basic date such as 20260101T120000Z.", header, truncate(v, 64))
	}
	if header == "x-amz-date" && !s.signs(header) {
		return authErr(reasonMalformed, errIncompleteSig, "The date header must be signed (SignedHeaders lacks 'x-amz-date').")
	}
	s.amzDate, s.when = v, t
	return nil
}

func parseQueryAuth(q url.Values) (*sigV4, *authFailure) {
	if alg := q.Get("X-Amz-Algorithm"); alg != sigV4Algorithm {
		return nil, authErr(reasonMalformed, errIncompleteSig, "Unsupported AWS 'algorithm': %q (only %s is accepted)", truncate(alg, 64), sigV4Algorithm)
	}
	var missing []string
	for _, p := range [...]string{"X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		if q.Get(p) == "" {
			missing = append(missing, "'"+p+"'")
		}
	}
	if len(missing) > 0 {
		return nil, authErr(reasonMalformed, errIncompleteSig, "AWS query-string parameters missing: %s.", strings.Join(missing, ", "))
	}
	s := &sigV4{signature: q.Get("X-Amz-Signature"), query: true}
	if f := s.setCredential(q.Get("X-Amz-Credential")); f != nil {
		return nil, f
	}
	if f := s.setSignedHeaders(q.Get("X-Amz-SignedHeaders")); f != nil {
		return nil, f
	}
	t, err := time.Parse(amzDateLayout, q.Get("X-Amz-Date"))
	if err != nil {
		return nil, authErr(reasonMalformed, errIncompleteSig, "X-Amz-Date %q is not an ISO-8601 basic date such as 20260101T120000Z.", truncate(q.Get("X-Amz-Date"), 64))
	}
	s.amzDate, s.when = q.Get("X-Amz-Date"), t
	if v := q.Get("X-Amz-Expires"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || time.Duration(n)*time.Second > maxPresignTTL {
			return nil, authErr(reasonMalformed, errIncompleteSig, "X-Amz-Expires must be a number of seconds from 1 to %d, got %q.", int(maxPresignTTL/time.Second), truncate(v, 32))
		}
		s.expires = time.Duration(n) * time.Second
	}
	return s, nil
}

func (s *sigV4) setCredential(v string) *authFailure {
	parts := strings.Split(v, "/")
	if len(parts) != 5 || parts[0] == "" {
		return authErr(reasonMalformed, errIncompleteSig, "Credential must have the form <access key id>/<date>/<region>/kinesis/aws4_request, got %q.", truncate(v, 200))
	}
	s.accessKey, s.date, s.region, s.service, s.terminator = parts[0], parts[1], parts[2], parts[3], parts[4]
	return nil
}

func (s *sigV4) setSignedHeaders(v string) *authFailure {
	if v == "" {
		return authErr(reasonMalformed, errIncompleteSig, "SignedHeaders is empty; it must list at least host.")
	}
	s.signedHeaders = strings.Split(v, ";")
	for _, h := range s.signedHeaders {
		if h == "" || h != strings.ToLower(h) {
			return authErr(reasonMalformed, errIncompleteSig, "SignedHeaders %q must be lower-case header names separated by ';'.", truncate(v, 200))
		}
	}
	if !s.signs("host") {
		return authErr(reasonMalformed, errIncompleteSig, "SignedHeaders %q must include host.", truncate(v, 200))
	}
	return nil
}

func (s *sigV4) signs(header string) bool {
	for _, h := range s.signedHeaders {
		if h == header {
			return true
		}
	}
	return false
}

// checkScope checks everything but the signature itself: the credential
// scope and the time window.
func (s *sigV4) checkScope(r *http.Request, q url.Values, now time.Time) *authFailure {
	if s.service != sigV4Service {
		return authErr(reasonMalformed, errInvalidSignature, "Credential should be scoped to correct service: '%s'. ", sigV4Service)
	}
	if s.terminator != sigV4Terminator {
		return authErr(reasonMalformed, errInvalidSignature, "Credential should be scoped with a valid terminator: '%s', not '%s'.", sigV4Terminator, truncate(s.terminator, 64))
	}
	if s.region == "" {
		return authErr(reasonMalformed, errIncompleteSig, "Credential should be scoped to a valid region, not ''.")
	}
	if day := s.when.Format("20060102"); s.date != day {
		return authErr(reasonMalformed, errInvalidSignature, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			truncate(s.date, 16), day, s.amzDate)
	}
	// A presigner moves X-Amz-* headers into the (signed) query string.
	if t := r.Header.Get("X-Amz-Target"); t != "" && !s.signs("x-amz-target") && !(s.query && q.Get("X-Amz-Target") == t) {
		return authErr(reasonMalformed, errIncompleteSig, "SignedHeaders must include x-amz-target: the operation has to be covered by the signature.")
	}
	now = now.UTC()
	if s.when.After(now.Add(maxClockSkew)) {
		return authErr(reasonExpired, errInvalidSignature, "Signature not yet current: %s is still later than %s (%s + 5 min.)",
			s.amzDate, now.Add(maxClockSkew).Format(amzDateLayout), now.Format(amzDateLayout))
	}
	if s.expires > 0 {
		if end := s.when.Add(s.expires); now.After(end) {
			return authErr(reasonExpired, errInvalidSignature, "Signature expired: the presigned request was valid until %s (X-Amz-Date %s + X-Amz-Expires %d), it is now %s.",
				end.Format(amzDateLayout), s.amzDate, int(s.expires/time.Second), now.Format(amzDateLayout))
		}
		return nil
	}
	if s.when.Before(now.Add(-maxClockSkew)) {
		return authErr(reasonExpired, errInvalidSignature, "Signature expired: %s is now earlier than %s (%s - 5 min.)",
			s.amzDate, now.Add(-maxClockSkew).Format(amzDateLayout), now.Format(amzDateLayout))
	}
	return nil
}

// verify checks a signature against the body as read, with the signing
// key derived from the secret.
func (s *sigV4) verify(r *http.Request, q url.Values, body []byte, key []byte) *authFailure {
	sum := sha256.Sum256(body)
	var hexSum [2 * sha256.Size]byte
	hex.Encode(hexSum[:], sum[:])
	if v := r.Header.Get("X-Amz-Content-Sha256"); v != "" && v != string(hexSum[:]) {
		return authErr(reasonBadSignature, errInvalidSignature, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	canon := s.canonicalRequest(r, q, hexSum[:])
	creq := sha256.Sum256(canon)
	sts := make([]byte, 0, 128)
	sts = append(sts, sigV4Algorithm+"\n"...)
	sts = append(sts, s.amzDate...)
	sts = append(sts, '\n')
	sts = append(sts, s.date+"/"+s.region+"/"+sigV4Service+"/"+sigV4Terminator+"\n"...)
	sts = hex.AppendEncode(sts, creq[:])
	m := hmac.New(sha256.New, key)
	m.Write(sts)
	want := m.Sum(nil)
	got, err := hex.DecodeString(s.signature)
	if err != nil || !hmac.Equal(got, want) {
		return authErr(reasonBadSignature, errInvalidSignature, msgSignatureMismatch)
	}
	return nil
}

// canonicalRequest is method \n path \n query \n headers \n signed
// headers \n payload hash.
func (s *sigV4) canonicalRequest(r *http.Request, q url.Values, payloadHash []byte) []byte {
	b := make([]byte, 0, 512)
	b = append(b, r.Method...)
	b = append(b, '\n')
	b = appendCanonicalPath(b, r.URL.EscapedPath())
	b = append(b, '\n')
	b = appendCanonicalQuery(b, q, s.query)
	b = append(b, '\n')
	for _, h := range s.signedHeaders {
		b = append(b, h...)
		b = append(b, ':')
		switch vs := r.Header.Values(h); {
		case h == "host":
			b = append(b, r.Host...)
		case h == "content-length" && len(vs) == 0 && r.ContentLength > 0:
			// net/http keeps the length in ContentLength for requests
			// that did not come off the wire.
			b = strconv.AppendInt(b, r.ContentLength, 10)
		default:
			for i, v := range vs {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendTrimmed(b, v)
			}
		}
		b = append(b, '\n')
	}
	b = append(b, '\n')
	b = append(b, strings.Join(s.signedHeaders, ";")...)
	b = append(b, '\n')
	b = append(b, payloadHash...)
	return b
}

// appendCanonicalPath encodes each segment of the path as sent once more,
// as SigV4 asks of every service but S3.
func appendCanonicalPath(b []byte, escaped string) []byte {
	if escaped == "" {
		return append(b, '/')
	}
	for i, seg := range strings.Split(escaped, "/") {
		if i > 0 {
			b = append(b, '/')
		}
		b = appendURIEncoded(b, seg)
	}
	return b
}

// appendCanonicalQuery sorts the parameters by encoded name, then value;
// the query form leaves its own signature out.
func appendCanonicalQuery(b []byte, q url.Values, query bool) []byte {
	if len(q) == 0 {
		return b
	}
	type kv struct{ k, v string }
	pairs := make([]kv, 0, len(q))
	for k, vs := range q {
		if query && k == "X-Amz-Signature" {
			continue
		}
		ek := string(appendURIEncoded(nil, k))
		for _, v := range vs {
			pairs = append(pairs, kv{ek, string(appendURIEncoded(nil, v))})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	for i, p := range pairs {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, p.k...)
		b = append(b, '=')
		b = append(b, p.v...)
	}
	return b
}

// appendURIEncoded percent-encodes everything but A-Z a-z 0-9 - _ . ~,
// upper-case hex, as SigV4 specifies.
func appendURIEncoded(b []byte, s string) []byte {
	const hexUpper = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexUpper[c>>4], hexUpper[c&15])
	}
	return b
}

// appendTrimmed appends a header value with its ends trimmed and inner
// runs of spaces collapsed to one.
func appendTrimmed(b []byte, v string) []byte {
	v = strings.TrimSpace(v)
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' || c == '\t' {
			space = true
			continue
		}
		if space {
			b = append(b, ' ')
			space = false
		}
		b = append(b, c)
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
