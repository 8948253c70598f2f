package auth

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkACLCheck measures one publish check plus one delivery check
// for a device in ACLs of 1, 100 and 10,000 user sections with three
// patterns: the cost must not grow with the number of users.
func BenchmarkACLCheck(b *testing.B) {
	for _, users := range []int{1, 100, 10_000} {
		var sb strings.Builder
		for i := range users {
			fmt.Fprintf(&sb, "user dev%d\ntopic read fleet/broadcast/#\ntopic deny dev%d/secret\n", i, i)
		}
		sb.WriteString("pattern write devices/%u/#\npattern read devices/%u/cmd/#\npattern readwrite clients/%c/+\n")
		a := mustACL(b, sb.String())
		user := fmt.Sprintf("dev%d", users/2)
		client := "c-" + user
		topic, cmd := "devices/"+user+"/telemetry", "devices/"+user+"/cmd/reboot"
		b.Run(fmt.Sprintf("users=%d", users), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !a.CanPublish(user, client, topic) || !a.CanReceive(user, client, cmd) {
					b.Fatal("denied")
				}
			}
		})
	}
}

// BenchmarkVerify is the CPU one CONNECT with a password costs.
func BenchmarkVerify(b *testing.B) {
	h, err := HashPassword([]byte("pw"))
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, line string }{
		{"pbkdf2-101", "d1:$7$101$Kz9PEZohODGvSxcp$vu6d7dYvym7aWN7n22uyAQ7Y36U/oRH2g0VinY3/e0fdtNwmuXTOcvlhgADiPe+IL6skS1PcwxJTbNbdM/aOIg=="},
		{"argon2id-default", "d1:" + h},
	} {
		p, err := ParsePasswords("pw", []byte(tc.line))
		if err != nil {
			b.Fatal(err)
		}
		pw := []byte("pw")
		if tc.name == "pbkdf2-101" {
			pw = []byte("secret1")
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Verify("d1", pw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
