package api

import (
	"reflect"
	"strings"
	"testing"

	"github.com/weir-gateway/weir/internal/conf"
)

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{"unset", Config{}, Config{Listen: DefaultListen, ReadLimits: ReadLimits{CallsPerSec: 5, BytesPerSec: 2 * conf.MiB}}},
		{"disabled_kept", Config{ReadLimits: ReadLimits{CallsPerSec: 1}}, Config{ReadLimits: ReadLimits{CallsPerSec: 1}}},
		{"limits_filled", Config{Listen: "127.0.0.1:1"}, Config{Listen: "127.0.0.1:1", ReadLimits: ReadLimits{CallsPerSec: 5, BytesPerSec: 2 * conf.MiB}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.WithDefaults()
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("WithDefaults = %+v, want %+v", got, tc.want)
			}
			if errs := got.Validate(); len(errs) != 0 {
				t.Fatalf("Validate = %v", errs)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want []string
	}{
		{"bad_listen", Config{Listen: "nope"}, []string{`listen: invalid listen address "nope"`}},
		{"negative_limits", Config{Listen: DefaultListen, ReadLimits: ReadLimits{CallsPerSec: -1, BytesPerSec: -1}},
			[]string{"read_limits.calls_per_sec: must be >= 0", "read_limits.bytes_per_sec: must be >= 0"}},
		{"tls_half", Config{Listen: DefaultListen, TLS: TLSConfig{CertFile: "a.crt"}}, []string{"tls.key_file: is required"}},
		{"tls_other_half", Config{Listen: DefaultListen, TLS: TLSConfig{KeyFile: "a.key"}}, []string{"tls.cert_file: is required"}},
		{"bad_hosts", Config{Listen: DefaultListen, AllowedHosts: []string{"ok.example", "", "http://x", "h:80", "a.*.b", "*x", "*.plant.example"}},
			[]string{`allowed_hosts[1]: "" is empty`, `allowed_hosts[2]: "http://x" must be a host name, not a URL`,
				`allowed_hosts[3]: "h:80" must be a host name without port`, `allowed_hosts[4]: "a.*.b" may use "*" only`, `allowed_hosts[5]: "*x" may use`}},
		{"anonymous_with_keys", Config{Listen: DefaultListen, CredentialsFile: "k.yaml", AllowAnonymous: true},
			[]string{"allow_anonymous: has no effect with credentials_file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.in.Validate()
			if len(errs) != len(tc.want) {
				t.Fatalf("Validate = %v, want %d errors", errs, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(errs[i].Error(), w) {
					t.Errorf("[%d] = %q, want prefix %q", i, errs[i], w)
				}
			}
		})
	}
}
