// Package tlsmem gives back the input buffers crypto/tls keeps, for the
// life of a connection, at the size of the largest handshake message it
// read.
//
// A server-side tls.Conn reads the ClientHello into two bytes.Buffers: the
// record buffer (rawInput) and the handshake-message buffer (hand). Neither
// ever shrinks. A Go 1.24+ client's hello carries a post-quantum key share
// and is ~1.8 KB, and with a client certificate the hand buffer grows to
// its size too, so an idle MQTT device over TLS keeps 3–4 KiB of buffers it
// will not use again: about 7 KiB of RSS once the garbage collector's
// headroom is counted, a third of what the device costs the gateway.
// crypto/tls has no API to release them (a device reconnecting is the only
// way it does), so Release reaches the two fields by offset.
//
// That is done with care:
//   - the offsets come from reflect at start-up, and only if each field
//     still has the name and type this package knows; on another layout
//     Supported is false and Release does nothing (TestLayoutKnown fails,
//     so a Go upgrade that changes crypto/tls is noticed, not silently
//     paid for);
//   - Release runs on the goroutine that reads the connection, between
//     reads, after the handshake: the only places crypto/tls touches these
//     fields are Read and the handshake, under the same goroutine's lock
//     (Write never does);
//   - it releases only buffers that hold nothing: a record or handshake
//     bytes not yet consumed stay where they are, and the caller tries
//     again after its next read.
//
// The next record regrows the record buffer to ~0.5 KiB (crypto/tls reads
// with bytes.MinRead of slack), which an active connection needed anyway;
// the handshake buffer stays empty unless the client sends a post-handshake
// message (a TLS 1.3 KeyUpdate), which crypto/tls handles as before.
package tlsmem
