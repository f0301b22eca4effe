package flagconf

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func newSet(t *testing.T) (fs *flag.FlagSet, http, cert *string, devs *list) {
	t.Helper()
	fs = flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	fs.String("config", "", "TOML file")
	http = fs.String("http-addr", ":8080", "HTTP listen address")
	cert = fs.String("tls-broker-cert", "", "broker certificate")
	devs = &list{}
	fs.Var(devs, "device", "a device (repeatable)")
	return fs, http, cert, devs
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadPrecedenceFlagsThenEnvironmentThenFile(t *testing.T) {
	file := writeFile(t, "http-addr = \":1\"\ndevice = [\"a\", \"b\"]\n[tls]\nbroker_cert = \"file.pem\"\n")

	fs, http, cert, devs := newSet(t)
	if err := Load(fs, []string{"--config", file}, "config"); err != nil {
		t.Fatal(err)
	}
	if *http != ":1" || *cert != "file.pem" || devs.String() != "a,b" {
		t.Fatalf("from the file: http=%q cert=%q devices=%q", *http, *cert, devs.String())
	}

	t.Setenv("SHELFSYNC_HTTP_ADDR", ":2")
	fs, http, cert, _ = newSet(t)
	if err := Load(fs, []string{"--config", file}, "config"); err != nil {
		t.Fatal(err)
	}
	if *http != ":2" || *cert != "file.pem" {
		t.Fatalf("the environment beats the file: http=%q cert=%q", *http, *cert)
	}

	fs, http, _, _ = newSet(t)
	if err := Load(fs, []string{"--config", file, "--http-addr", ":3"}, "config"); err != nil {
		t.Fatal(err)
	}
	if *http != ":3" {
		t.Fatalf("a flag beats the environment: http=%q", *http)
	}
}

func TestLoadRefusesWhatItCannotUse(t *testing.T) {
	for name, c := range map[string]struct{ file, env, want string }{
		"unknown key":   {file: "htp-addr = \":1\"\n", want: `unknown key "htp-addr"`},
		"broken TOML":   {file: "http-addr = \n", want: "config file"},
		"bad env value": {env: "x", want: "SHELFSYNC_DEVICE_COUNT"},
		"missing file":  {want: "no such file"},
	} {
		t.Run(name, func(t *testing.T) {
			fs, _, _, _ := newSet(t)
			fs.Int("device-count", 0, "an int")
			args := []string{"--config", filepath.Join(t.TempDir(), "absent.toml")}
			if c.file != "" {
				args[1] = writeFile(t, c.file)
			}
			if c.env != "" {
				args = nil
				t.Setenv("SHELFSYNC_DEVICE_COUNT", c.env)
			}
			err := Load(fs, args, "config")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestSharedConfigPrintWritesEveryValueWithItsDefault(t *testing.T) {
	t.Setenv("SHELFSYNC_HTTP_ADDR", ":9")
	var out, errs bytes.Buffer
	register := func(fs *flag.FlagSet) {
		fs.String("config", "", "TOML file")
		fs.String("http-addr", ":8080", "HTTP listen address")
	}
	if code := Shared("shelfsync-test", "v1", "usage", []string{"config", "print"}, &out, &errs, register); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	want := "# HTTP listen address\n# default: \":8080\"; environment: SHELFSYNC_HTTP_ADDR\nhttp-addr = \":9\"\n"
	if !strings.Contains(out.String(), want) {
		t.Fatalf("config print wrote:\n%s\nwant it to contain:\n%s", out.String(), want)
	}
	if code := Shared("shelfsync-test", "v1", "usage", []string{"config", "show"}, &out, &errs, register); code != 2 {
		t.Fatalf("config show: exit %d, want 2", code)
	}
}

func TestSharedCommands(t *testing.T) {
	var out, errs bytes.Buffer
	register := func(fs *flag.FlagSet) { fs.String("config", "", "TOML file") }
	if code := Shared("shelfsync-test", "v1.2", "the usage\n", []string{"version"}, &out, &errs, register); code != 0 || out.String() != "v1.2\n" {
		t.Fatalf("version: exit %d, %q", code, out.String())
	}
	out.Reset()
	if code := Shared("shelfsync-test", "v1.2", "the usage\n", []string{"help"}, &out, &errs, register); code != 0 || out.String() != "the usage\n" {
		t.Fatalf("help: exit %d, %q", code, out.String())
	}
	if code := Shared("shelfsync-test", "v1.2", "the usage\n", []string{"frobnicate"}, &out, &errs, register); code != 2 || !strings.Contains(errs.String(), `unknown command "frobnicate"`) {
		t.Fatalf("unknown: exit %d, %q", code, errs.String())
	}
}

func TestCheckLog(t *testing.T) {
	if errs := CheckLog("warn", "json"); len(errs) != 0 {
		t.Fatal(errs)
	}
	errs := CheckLog("loud", "xml")
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "log-level") || !strings.Contains(errs[1].Error(), "log-format") {
		t.Fatalf("got %v, want one error naming each flag", errs)
	}
}
