// Package kinesalite runs kinesalite, a Kinesis emulator from the npm
// registry that no one on this project wrote, for tests: Start installs
// the pinned version if needed and runs it on a free loopback port, and
// CreateStream and ReadAll set up and read back upstream streams.
//
// Node packages are looked up in <repo>/integration/node_modules (where
// scripts/install-deps.sh puts them with `npm ci`) and then in
// <repo>/integration/.npm/node_modules; if neither has the pinned version,
// it is installed into the latter with `npm install`, under a file lock so
// that test packages running in parallel do not race.
package kinesalite
