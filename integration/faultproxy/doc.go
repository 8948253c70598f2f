// Package faultproxy is an HTTP reverse proxy for the Kinesis JSON
// protocol that sits between a producer (the forwarder) and a Kinesis
// emulator (kinesalite) and injects the failures a real upstream shows:
// per-record throttling inside PutRecords (the throttled entries are cut
// out of the request, so they never reach the emulator, and merged back
// into the response as failed), whole-request throttling, 5xx before and
// after forwarding, responses slower than the client's timeout, connection
// resets, an upstream that is down, and a stream that does not exist.
//
// Faults are chosen with a seeded random generator, so a test run is
// repeatable as far as the order of concurrent requests allows, and every
// fault injected is counted.
package faultproxy
