package integration

import (
	"debug/elf"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weir-gateway/weir/integration/harness"
)

// releaseVersion is what the test stamps; its Debian form is below.
const (
	releaseVersion    = "0.0.0-releasetest"
	releaseDebVersion = "0.0.0+releasetest"
)

// TestRelease builds the release with scripts/release.sh, installs the
// amd64 package on this machine (as CI does, as root), checks what it put
// where, verifies the installed unit with systemd-analyze, removes and
// purges it, and starts the arm64 and armv7 binaries under qemu.
//
// It refuses to run where a weir package, /etc/weir or /var/lib/weir
// already exists, since purging would take them; whatever it installs or
// creates is removed even when it fails.
func TestRelease(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("TestRelease installs a package: run it as root (CI does; scripts/test.sh runs as root)")
	}
	t.Cleanup(lockFile(t, "/run/lock/weir-release-test.lock")) // first registered: released last
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "weir").Output(); err == nil && strings.Contains(string(out), "installed") {
		t.Fatalf("a weir package is installed on this machine (%s); the test would replace and purge it", out)
	}
	for _, p := range []string{"/etc/weir", "/var/lib/weir", "/usr/bin/weir"} {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s exists; the test would replace or delete it", p)
		}
	}
	_, userErr := user.Lookup("weir")
	hadUser := userErr == nil

	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dist := t.TempDir()
	build := exec.Command("bash", "scripts/release.sh")
	build.Dir = root
	build.Env = append(os.Environ(), "OUT="+dist, "VERSION="+releaseVersion)
	start := time.Now()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/release.sh: %v\n%s", err, out)
	}
	t.Logf("scripts/release.sh built three binaries and packages in %v", time.Since(start).Round(time.Second))
	bin := func(arch string) string { return filepath.Join(dist, "weir-"+releaseVersion+"-linux-"+arch) }
	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "armv7": elf.EM_ARM} {
		checkStaticELF(t, bin(arch), machine)
	}

	deb := filepath.Join(dist, "weir_"+releaseDebVersion+"_amd64.deb")
	t.Cleanup(func() {
		// Whatever happened above: no package, no files, no user left.
		_ = exec.Command("dpkg", "--purge", "weir").Run()
		os.RemoveAll("/etc/weir")
		os.RemoveAll("/var/lib/weir")
		if !hadUser {
			_ = exec.Command("deluser", "--system", "--quiet", "weir").Run()
			_ = exec.Command("delgroup", "--system", "--quiet", "weir").Run()
		}
	})
	mustRun(t, "dpkg", "-i", deb)

	out := mustRun(t, "/usr/bin/weir", "version")
	for _, want := range []string{"weir " + releaseVersion + "\n", "platform: linux/amd64\n", "go: go"} {
		if !strings.Contains(out, want) {
			t.Errorf("weir version lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "revision: unknown") {
		t.Errorf("weir version has no revision:\n%s", out)
	}
	if out := mustRun(t, "/usr/bin/weir", "check-config", "/etc/weir/weir.yaml"); !strings.Contains(out, "ok") {
		t.Errorf("check-config of the installed config: %s", out)
	}
	if out := mustRun(t, "dpkg-query", "-W", "-f=${Conffiles}", "weir"); !strings.Contains(out, "/etc/weir/weir.yaml") {
		t.Errorf("conffiles: %q, want /etc/weir/weir.yaml", out)
	}
	u, err := user.Lookup("weir")
	if err != nil || u.HomeDir != "/var/lib/weir" {
		t.Fatalf("system user weir: %+v, %v", u, err)
	}
	if fi, err := os.Stat("/var/lib/weir"); err != nil || fi.Mode().Perm() != 0o750 || strconv.FormatUint(uint64(fi.Sys().(*syscall.Stat_t).Uid), 10) != u.Uid {
		t.Fatalf("/var/lib/weir: %v, %v; want a directory 0750 owned by weir", fi, err)
	}
	unit := "/lib/systemd/system/weir.service"
	ub, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=/usr/bin/weir serve --config /etc/weir/weir.yaml", "User=weir\n"} {
		if !strings.Contains(string(ub), want) {
			t.Errorf("installed unit lacks %q", want)
		}
	}
	if strings.Contains(string(ub), "/usr/local/bin") || strings.Contains(string(ub), "DynamicUser=yes") {
		t.Errorf("installed unit still names /usr/local/bin or DynamicUser:\n%s", ub)
	}
	// verify loads the unit file itself, with or without systemd as PID 1,
	// and checks that every Exec*= binary exists.
	if out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput(); err != nil || strings.Contains(string(out), "weir.service") {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}

	// Data and configuration survive a remove; purge takes both.
	if err := os.WriteFile("/var/lib/weir/marker", []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "dpkg", "-r", "weir")
	for _, gone := range []string{"/usr/bin/weir", unit} {
		if _, err := os.Lstat(gone); err == nil {
			t.Errorf("dpkg -r left %s", gone)
		}
	}
	for _, kept := range []string{"/etc/weir/weir.yaml", "/var/lib/weir/marker"} {
		if _, err := os.Lstat(kept); err != nil {
			t.Errorf("dpkg -r removed %s: %v", kept, err)
		}
	}
	mustRun(t, "dpkg", "-P", "weir")
	for _, gone := range []string{"/etc/weir", "/var/lib/weir", "/etc/systemd/system/multi-user.target.wants/weir.service", "/etc/systemd/system/weir.service"} {
		if _, err := os.Lstat(gone); err == nil {
			t.Errorf("dpkg -P left %s", gone)
		}
	}
	if out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", "weir").Output(); strings.Contains(string(out), "installed") {
		t.Errorf("after dpkg -P: status %q", out)
	}

	// The ARM builds run under qemu user emulation.
	sample := filepath.Join(root, "packaging", "weir.yaml")
	for arch, emu := range map[string]string{"arm64": "qemu-aarch64-static", "armv7": "qemu-arm-static"} {
		if _, err := exec.LookPath(emu); err != nil {
			t.Fatalf("%s not found (Debian: qemu-user-static; scripts/install-deps.sh installs it)", emu)
		}
		goarch := map[string]string{"arm64": "arm64", "armv7": "arm"}[arch]
		if out := mustRun(t, emu, bin(arch), "version"); !strings.Contains(out, "weir "+releaseVersion+"\n") || !strings.Contains(out, "platform: linux/"+goarch+"\n") {
			t.Errorf("%s weir version:\n%s", arch, out)
		}
		if out := mustRun(t, emu, bin(arch), "check-config", sample); !strings.Contains(out, sample+": ok") {
			t.Errorf("%s weir check-config: %s", arch, out)
		}
	}
}

// checkStaticELF fails unless path is a stripped executable for machine
// with no program interpreter, i.e. statically linked.
func checkStaticELF(t *testing.T, path string, machine elf.Machine) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	if f.Machine != machine {
		t.Errorf("%s: machine %v, want %v", path, f.Machine, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked (has an interpreter)", path)
		}
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s is not stripped (has .symtab)", path)
	}
}

// mustRun runs a command and returns its combined output, failing the test
// on a non-zero exit.
func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// lockFile serializes test processes that share the machine's package
// database; dpkg's own lock would make the second fail instead of wait.
func lockFile(t *testing.T, path string) func() {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	return func() { f.Close() }
}
