package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/weir-gateway/weir/ingest/auth"
)

const passwdSynopsis = `weir passwd [--password-stdin] [-c] FILE USER
       weir passwd --delete FILE USER

Sets USER's password in the password file FILE (auth.password_file), as an
argon2id hash; every other line of FILE is kept. The password is asked twice
on the terminal, or read as one line from standard input with
--password-stdin. FILE must exist unless -c is given; -c starts a new file
holding only USER (replacing FILE if it exists). --delete removes USER.

FILE is in Mosquitto's format: lines written by mosquitto_passwd ($7$ and
$6$ hashes) work as they are and can sit beside lines weir passwd writes,
so either tool can manage the same file. A running gateway re-reads the file
when it changes.`

func cmdPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("passwd", passwdSynopsis, stderr)
	fromStdin := fs.Bool("password-stdin", false, "read the password as one line from standard input")
	del := fs.Bool("delete", false, "remove USER from FILE")
	create := fs.Bool("c", false, "create FILE anew with only USER (replaces an existing FILE)")
	// Flags may follow FILE USER, as mosquitto_passwd users tend to write.
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 2 {
		fs.Usage()
		return 2
	}
	file, user := pos[0], pos[1]
	if *del && (*create || *fromStdin) {
		fmt.Fprintln(stderr, "weir passwd: --delete takes no password and cannot be combined with -c")
		return 2
	}
	if *del {
		if err := auth.DeletePassword(file, user); err != nil {
			fmt.Fprintln(stderr, "weir passwd:", err)
			return 1
		}
		fmt.Fprintf(stdout, "removed %s from %s\n", user, file)
		return 0
	}
	if err := auth.ValidUserName(user); err != nil {
		fmt.Fprintln(stderr, "weir passwd:", err)
		return 2
	}
	if !*create {
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "weir passwd: %s does not exist; use -c to create it\n", file)
			return 1
		}
	}
	password, err := readPassword(stdin, stderr, *fromStdin)
	if err != nil {
		fmt.Fprintln(stderr, "weir passwd:", err)
		return 1
	}
	write := auth.SetPassword
	if *create {
		write = auth.NewPasswordFile
	}
	if err := write(file, user, password); err != nil {
		fmt.Fprintln(stderr, "weir passwd:", err)
		return 1
	}
	fmt.Fprintf(stdout, "set the password of %s in %s\n", user, file)
	// Other lines were kept as they were; say now if the gateway would
	// refuse the file for one of them.
	if _, err := auth.LoadPasswords(file); err != nil {
		fmt.Fprintf(stderr, "weir passwd: warning: the gateway will refuse %s until this is fixed:\n%v\n", file, err)
		return 1
	}
	return 0
}

// readPassword reads one line from stdin, or prompts twice on the
// terminal without echo.
func readPassword(stdin io.Reader, stderr io.Writer, fromStdin bool) ([]byte, error) {
	if fromStdin {
		line, err := bufio.NewReader(stdin).ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read password: %w", err)
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte{'\n'}), []byte{'\r'})
		if len(line) == 0 {
			return nil, errors.New("empty password")
		}
		return line, nil
	}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, errors.New("standard input is not a terminal; use --password-stdin to read the password from it")
	}
	fd := int(f.Fd())
	first, err := prompt(stderr, fd, "Password: ")
	if err != nil {
		return nil, err
	}
	if len(first) == 0 {
		return nil, errors.New("empty password")
	}
	second, err := prompt(stderr, fd, "Repeat password: ")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(first, second) {
		return nil, errors.New("the passwords do not match")
	}
	return first, nil
}

func prompt(stderr io.Writer, fd int, text string) ([]byte, error) {
	fmt.Fprint(stderr, text)
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	return pw, nil
}
