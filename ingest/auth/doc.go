// Package auth reads the gateway's credential files, the password file and
// the ACL file, both in Mosquitto 2's formats so that an operator can keep
// using mosquitto_passwd and an existing acl_file, and answers the
// broker's questions: is this password right, may this client publish,
// subscribe, receive. Store holds both files live: checks read an
// immutable snapshot through an atomic pointer (no lock on the hot path)
// and Reload swaps in new files, keeping the old contents of a file whose
// new version is bad.
//
// # Password file
//
// One USER:HASH per line; blank lines and lines starting with '#' are
// ignored; the user name is everything before the first ':'; lines are
// trimmed of surrounding white space. Accepted hashes:
//
//	$7$ITER$SALT$HASH     mosquitto_passwd 2.x: PBKDF2-HMAC-SHA512, 64-byte
//	                      hash, standard padded base64 (default ITER 101)
//	$6$SALT$HASH          Mosquitto 1.x (mosquitto_passwd -H sha512):
//	                      SHA-512 over the password then the salt
//	$argon2id$v=19$m=KiB,t=N,p=N$SALT$HASH
//	                      PHC string, unpadded base64; `weir passwd` and
//	                      HashPassword write m=7168,t=5,p=1, 16-byte salt,
//	                      32-byte hash
//
// Anything else (a plain-text password, an empty hash, another scheme,
// bad base64, a second line for a user, costs beyond the limits in
// passwd.go) refuses the whole file, each bad line reported as
// FILE:LINE with what to do; no error shows a password or hash. New
// entries are written by SetPassword/NewPasswordFile/DeletePassword, which
// keep every other line and rewrite the file atomically.
//
// # ACL file
//
//	# lines before the first `user` line apply to anonymous clients
//	topic read $SYS/broker/uptime
//	user alice
//	topic readwrite alice/#
//	topic deny alice/secret
//	pattern write devices/%u/#
//	pattern read devices/%u/cmd/#
//
// `user NAME` starts NAME's section (repeated sections add up); `topic
// [read|write|readwrite|deny] FILTER` adds a rule to the current section
// (readwrite when the access word is left out); `pattern ...` adds a rule
// for every client, wherever it stands, with %u replaced by the user name
// and %c by the client id. The filter is the rest of the line, so it may
// hold spaces, but then the access word must come first: `topic rw a/b`
// is an error rather than a rule for the topic "rw a/b". Unknown
// directives and invalid filters (a/#/b, a+) are FILE:LINE errors.
//
// # Matching rules
//
// As in Mosquitto 2: once an ACL is configured, what is not granted is
// denied; deny rules are checked before grants; read is subscribe and
// receive, write is publish. A check looks at the client's own section
// (anonymous clients: the lines before the first user) and the patterns.
//
//   - '+' and '#' never match a topic starting with '$' at the first level
//     (MQTT 4.7.2), nor does a %u/%c level, so $SYS is reachable only
//     through rules that spell out "$SYS".
//   - %u and %c may stand anywhere in a level (dev-%c). A pattern needing
//     %u never matches an anonymous client; one needing %c never matches
//     an empty client id; and a value holding '+', '#' or '/' matches
//     nothing, because substituted as text it could only widen the rule
//     (client id "+" must not turn devices/%c/# into devices/+/#). Values
//     are compared level by level, never pasted into a filter. In `topic`
//     lines %u and %c are plain text, as in Mosquitto.
//   - CanPublish and CanReceive match the topic name. CanSubscribe asks
//     whether some read rule covers the subscription: matches every topic
//     the subscription can match (a/# covers a/+/b and a; a/+ does not
//     cover a/#; a wildcard in the subscription is covered only by a
//     wildcard of the rule at that level). It is refused if a deny rule
//     covers it. A deny rule narrower than the subscription (topic deny
//     alice/secret under alice/#) lets the subscription through and is
//     enforced by CanReceive on each delivered message.
//
// Mosquitto differs here: 2.0.11 (Debian's, tried with mosquitto_sub -V 5
// against an acl_file granting only `topic read a/+`) answers SUBACK 0x00
// to every filter, even `#` and `c`, and filters only at delivery. weir
// refuses a subscription no read rule covers (SUBACK 0x87/0x80), so a
// granted SUBACK means the client receives what it asked for, except what
// an explicit deny rule holds back.
//
// # Costs
//
// A check takes no lock and allocates nothing: one map lookup for the
// client's section, then its rules and the patterns, each matched level
// by level. BenchmarkACLCheck (one publish and one delivery check, three
// patterns) measured 336, 246 and 225 ns/op with 1, 100 and 10,000 user
// sections on a shared 2-core AMD EPYC (best of 3, noisy machine): flat in
// the number of users.
//
// Verification is deliberately slow and runs on every CONNECT with a
// password, which is why failed logins are rate-limited by the broker. On
// the same machine: $7$ with 101 iterations ≈ 50 µs; the default argon2id
// ≈ 19–24 ms and 7 MiB. argon2's memory is allocated per verification, so
// at most NumCPU hashes run at once (more would finish none sooner and a
// reconnecting fleet would allocate 7 MiB per device at the same moment).
// The parameters are OWASP's minimum with the least memory of its
// equivalent set (m=19 MiB,t=2 cost 67 ms here, m=7 MiB,t=5 19 ms); a Pi
// 4 core is several times slower, so expect roughly 60–100 ms there.
// Successful verifications are not cached: simpler, and a device connects
// rarely. An unknown user costs a hash of the file's first entry's scheme
// and cost, so the time of a refusal shows little about which users
// exist.
package auth
