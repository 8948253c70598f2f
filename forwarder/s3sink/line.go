package s3sink

import (
	"encoding/base64"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/weir-gateway/weir/shards"
)

// appendLine appends r's jsonl line, newline included: the bytes
// json.Marshal(NewLine(src, r)) gives, without reflection (a fuzz test
// holds the two together). On telemetry it costs a fifth of the CPU of
// encoding/json, which matters next to compression on a small gateway.
func appendLine(b []byte, src Source, r *shards.Record) []byte {
	seq := strconv.AppendUint(nil, r.Seq, 10)
	b = append(b, `{"id":`...)
	b = append(b, '"')
	b = appendEscaped(b, src.Gateway)
	b = append(b, '/')
	b = appendEscaped(b, src.Stream)
	b = append(b, '/')
	b = appendEscaped(b, src.Shard)
	b = append(b, '/')
	b = append(b, seq...)
	b = append(b, `","gateway":"`...)
	b = appendEscaped(b, src.Gateway)
	b = append(b, `","stream":"`...)
	b = appendEscaped(b, src.Stream)
	b = append(b, `","shard":"`...)
	b = appendEscaped(b, src.Shard)
	b = append(b, `","seq":"`...)
	b = append(b, seq...)
	b = append(b, `","key":"`...)
	b = appendEscaped(b, r.Key)
	b = append(b, `","topic":"`...)
	b = appendEscaped(b, r.Topic)
	b = append(b, `","client_id":"`...)
	b = appendEscaped(b, r.ClientID)
	b = append(b, `","ts":"`...)
	b = time.UnixMilli(r.Arrival).UTC().AppendFormat(b, TimeFormat)
	b = append(b, `","qos":`...)
	b = strconv.AppendUint(b, uint64(r.QoS), 10)
	b = append(b, `,"props":[`...)
	for i, p := range r.Props {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"key":"`...)
		b = appendEscaped(b, p.Key)
		b = append(b, `","value":"`...)
		b = appendEscaped(b, p.Value)
		b = append(b, `"}`...)
	}
	b = append(b, `],"data":`...)
	if r.Data == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, r.Data)
		b = append(b, '"')
	}
	return append(b, "}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendEscaped appends s as encoding/json writes a string's contents
// with HTML escaping on (its default): <, > and & as \u003c..., control
// characters as \b \f \n \r \t or \u00XX, invalid UTF-8 as \ufffd, and
// U+2028 and U+2029 escaped.
func appendEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}
