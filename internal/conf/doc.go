// Package conf holds the value types and error plumbing shared by every
// package's Config: durations and byte sizes as operators write them in
// YAML, and FieldError, which carries a YAML key path so that the loader in
// gateway/config can turn it into "FILE:LINE: path: message".
//
// Durations use Go syntax only ("10ms", "2s", "24h", "1h30m"); a bare 0 is
// accepted and means zero. A bare number such as 10 is rejected because it
// is ambiguous (seconds? milliseconds?), and there is no "d" unit because a
// day is not always 24h to an operator reading logs across a DST change:
// write 168h for a week.
//
// Byte sizes are whole numbers with an optional unit: B, KB, MB, GB, TB are
// decimal (10^3 steps, as disk vendors count) and KiB, MiB, GiB, TiB are
// binary (2^10 steps, as memory and Kinesis limits count). Units are matched
// case-insensitively and may be separated from the number by a space. A
// plain YAML integer is a number of bytes.
//
// Every Config.Validate in the project returns []error whose elements are
// FieldError values with a path relative to that Config ("rate.max_wait");
// the caller that embeds it adds its own key with Prefix, so that the root
// ends up with full paths such as "streams[0].rate.max_wait".
package conf
