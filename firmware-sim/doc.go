// Command firmware-sim plays a fleet of MQTT devices against a broker
// (the weir gateway, or any other) and checks afterwards that what the
// broker acknowledged reached a Kinesis-compatible stream.
//
//	firmware-sim [run] [flags]         simulate a fleet (see -h)
//	firmware-sim verify [flags]        check a ledger against a stream
//	firmware-sim check-scenario FILE   validate a scenario file
//
// The CLI is a thin layer over package fleet (the simulator), package
// verify (the checker) and package scenario (scenario files).
package main
