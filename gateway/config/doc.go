// Package config loads weir's YAML configuration file into a File and
// checks it, reporting every problem at once as "FILE:LINE: path: message"
// in the manner of nats-server: an unknown key is an error with a
// suggestion of the key that was probably meant, a value of the wrong type
// is an error at its line, and an error involving two keys names both.
//
// yaml.v3 does the YAML (syntax, aliases, merge keys, duplicate keys, the
// conversion of each scalar); the decoder walks its node tree against the
// yaml struct tags of File and the Config types it holds (ingest.Config,
// shards.StreamConfig, api.Config, forwarder.Config), because only the
// node tree knows the line of each key and whether a key was written at
// all. It names unknown keys itself, as Decoder.KnownFields would refuse
// them, so that the message can carry the path and a suggestion. yaml.v3
// reports a syntax error's line only inside its text, which is passed on
// whole.
//
// Absent keys keep their defaults: the root starts from the package
// defaults and every element of streams, routes and forwarders starts from
// its type's Defaults before the file's keys are applied, so a key written
// as 0 (records_per_sec: 0 = unlimited) stays 0. The lists themselves are
// what the file says: a file without streams declares none (streams can
// still be created through the API). Default returns the built-in
// configuration that `weir` without --config runs: MQTT and the API on
// loopback, data in ./weir-data, one stream "telemetry" of 4 shards and one
// route from every topic ("#") keyed by client id.
//
// Merge keys ("<<: *anchor") and aliases work as in YAML; a file may hold
// only one document, and an empty file is an error rather than a silent
// default configuration.
package config
