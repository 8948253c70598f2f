package config

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	"github.com/weir-gateway/weir/ingest"
	"github.com/weir-gateway/weir/ingest/auth"
	"github.com/weir-gateway/weir/internal/conf"
)

var gatewayIDRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

// check runs every Validate in the tree plus the checks that need more than
// one section, and places each error at its line.
func (f *File) check() Errors {
	var l conf.ErrorList
	if strings.TrimSpace(f.DataDir) == "" {
		l.Add("data_dir", "must not be empty; it is where the streams are stored, e.g. /var/lib/weir")
	}
	if f.GatewayID != "" && !gatewayIDRE.MatchString(f.GatewayID) {
		l.Add("gateway_id", "%q must be 1..128 characters from A-Z a-z 0-9 _ . : - (it goes into record ids upstream)", f.GatewayID)
	}
	l.Enum("log.level", f.Log.Level, "trace", "debug", "info", "warn", "error")
	l.Enum("log.format", f.Log.Format, "console", "json")

	l.Nest("mqtt", f.MQTT.Validate())
	l.Nest("mqtt", ingest.CheckAnonymous(f.MQTT, f.Auth.PasswordFile != ""))
	l.Nest("auth", f.Auth.Validate())
	f.checkIdentityBinding(&l)
	l.Nest("durability", f.Durability.Validate())
	l.Nest("encryption", f.Encryption.Validate())
	l.Nest("api", f.API.Validate())
	if f.API.Exposed() {
		l.Add("api.listen", "%s is not loopback and api.credentials_file is not set; set api.credentials_file to require signed requests, "+
			"api.allow_anonymous: true to serve anyone on the network, or listen on 127.0.0.1", f.API.Listen)
	}

	streams := map[string]int{}
	var names []string
	for i, s := range f.Streams {
		p := conf.Index("streams", i)
		l.Nest(p, s.Validate())
		if s.Name == "" {
			continue
		}
		if j, dup := streams[s.Name]; dup {
			l.Add(p+".name", "duplicate stream %q (also %s.name)", s.Name, conf.Index("streams", j))
			continue
		}
		streams[s.Name] = i
		names = append(names, strconv.Quote(s.Name))
	}
	known := "none defined"
	if len(names) > 0 {
		known = strings.Join(names, ", ")
	}

	filters := map[string]int{}
	for i, r := range f.Routes {
		p := conf.Index("routes", i)
		l.Nest(p, r.Validate())
		if _, ok := streams[r.Stream]; r.Stream != "" && !ok {
			l.Add(p+".stream", "unknown stream %q (streams[].name: %s)", r.Stream, known)
		}
		if j, dup := filters[r.Filter]; dup && r.Filter != "" {
			l.Add(p+".filter", "%q is already routed by %s.filter; the first matching route wins, so this one would never be used",
				r.Filter, conf.Index("routes", j))
		} else if !dup {
			filters[r.Filter] = i
		}
	}

	// Two forwarders of one stream must not share a checkpoint.
	type sinkKey struct{ stream, name string }
	sinkNames := map[sinkKey]int{}
	for i, fw := range f.Forwarders {
		p := conf.Index("forwarders", i)
		l.Nest(p, fw.Validate())
		if _, ok := streams[fw.Stream]; fw.Stream != "" && !ok {
			l.Add(p+".stream", "unknown stream %q (streams[].name: %s)", fw.Stream, known)
		}
		name := fw.SinkName()
		if name == "" {
			continue
		}
		key := sinkKey{fw.Stream, name}
		if j, dup := sinkNames[key]; dup {
			if fw.Name == "" {
				l.Add(p+".target_stream", "stream %q is already forwarded to %q by %s; the two would share one checkpoint (%s)",
					fw.Stream, name, conf.Index("forwarders", j), fw.Consumer())
			} else {
				l.Add(p+".name", "stream %q already has a forwarder named %q (%s); the two would share one checkpoint (%s): set a distinct name",
					fw.Stream, name, conf.Index("forwarders", j), fw.Consumer())
			}
		} else {
			sinkNames[key] = i
		}
	}
	l.Nest("uplink", f.Uplink.Validate())
	return f.locate(l)
}

// locate turns FieldErrors into *Error at the line of their key.
func (f *File) locate(errs []error) Errors {
	out := make(Errors, 0, len(errs))
	for _, err := range errs {
		var fe conf.FieldError
		if !errors.As(err, &fe) {
			fe = conf.FieldError{Msg: err.Error()}
		}
		out = append(out, &Error{File: f.src.name, Line: f.Line(fe.Path), Path: fe.Path, Msg: fe.Msg})
	}
	return out
}

// checkIdentityBinding refuses a client_id_must_match that nothing can
// satisfy: binding to the user name needs a password file, binding to the
// identity needs a password file or a listener that verifies certificates.
func (f *File) checkIdentityBinding(l *conf.ErrorList) {
	switch f.Auth.ClientIDMustMatch {
	case auth.ClientIDMatchUsername:
		if f.Auth.PasswordFile == "" {
			l.Add("auth.client_id_must_match", "username needs auth.password_file: without it no user name is ever verified")
		}
	case auth.ClientIDMatchIdentity:
		if f.Auth.PasswordFile != "" {
			return
		}
		for _, ls := range f.MQTT.Listeners {
			if ls.TLS.ClientCAFile != "" {
				return
			}
		}
		l.Add("auth.client_id_must_match", "identity needs auth.password_file or a mqtt.listeners[].tls.client_ca_file: without them no client has an identity")
	}
}
