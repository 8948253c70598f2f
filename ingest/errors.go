package ingest

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	// ErrInvalidRoute: a route's filter, stream or partition-key template
	// cannot be used.
	ErrInvalidRoute = errors.New("ingest: invalid route")
	// ErrAnonymousNotAllowed: the listener is not on loopback, no
	// authentication is configured and allow_anonymous is false.
	ErrAnonymousNotAllowed = errors.New("ingest: anonymous MQTT clients are only allowed on a loopback listener")
	// ErrBrokerState: Start called twice, or after Close.
	ErrBrokerState = errors.New("ingest: broker already started or closed")
)
