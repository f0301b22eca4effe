package linemode

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tooLong marks an expected ErrLineTooLong in a test's want list.
const tooLong = "<too long>"

// readAll drains r, recording lines and too-long errors in order.
func readAll(t *testing.T, r *Reader) []string {
	t.Helper()
	var got []string
	for {
		l, err := r.Next()
		switch {
		case errors.Is(err, io.EOF):
			return got
		case errors.Is(err, ErrLineTooLong):
			got = append(got, tooLong)
		case err != nil:
			t.Fatalf("Next: %v", err)
		default:
			got = append(got, l.Text)
		}
	}
}

func TestReader(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		in   string
		want []string
	}{
		{"crlf", Config{}, "4006381333931\r\nLOC:A-01\r\n", []string{"4006381333931", "LOC:A-01"}},
		{"cr", Config{}, "a\rb\r", []string{"a", "b"}},
		{"lf", Config{}, "a\nb\n", []string{"a", "b"}},
		{"mixed auto", Config{}, "a\r\nb\nc\rd\n\r", []string{"a", "b", "c", "d"}},
		{"empty lines skipped", Config{}, "\r\n\r\n\n\rx\r\n\r\n", []string{"x"}},
		{"unterminated last line at EOF", Config{}, "a\r\nb", []string{"a", "b"}},
		{"explicit tab", Config{Terminator: "\t"}, "a\r\tb\t", []string{"a\r", "b"}},
		{"explicit crlf keeps lone cr", Config{Terminator: "\r\n"}, "a\rb\r\nc\r\r\n", []string{"a\rb", "c\r"}},
		{"explicit etx", Config{Terminator: "\x03"}, "\x02one\x03\x02two\x03", []string{"\x02one", "\x02two"}},
		{"prefix and suffix stripped", Config{Terminator: "\r\n", Prefix: "\x02", Suffix: "\x03"},
			"\x02one\x03\r\ntwo\r\n\x02\x03\r\n", []string{"one", "two"}},
		{"garbage kept", Config{}, "a\x00b\xff\x1dc\r\n", []string{"a\x00b\xff\x1dc"}},
		{"gs1 with group separator", Config{}, "]C1010400638133393110ABC\x1d21XYZ\r\n",
			[]string{"]C1010400638133393110ABC\x1d21XYZ"}},
		{"exactly max", Config{MaxLine: 4}, "abcd\r\n", []string{"abcd"}},
		{"one over max", Config{MaxLine: 4}, "abcde\r\nok\r\n", []string{tooLong, "ok"}},
		{"long explicit", Config{MaxLine: 4, Terminator: "\r\n"}, "abcdefgh\r\nok\r\n", []string{tooLong, "ok"}},
		{"long explicit max plus partial term", Config{MaxLine: 4, Terminator: "\r\n"}, "abcd\rx\r\nok\r\n",
			[]string{tooLong, "ok"}},
		{"long at EOF", Config{MaxLine: 4}, "abcdefgh", []string{tooLong}},
		{"long then next scan", Config{MaxLine: 8}, strings.Repeat("x", 100) + "\r\nnext\r\n", []string{tooLong, "next"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range []int{1, 2, 3, 7, 4096} {
				r := NewReader(&chunkReader{data: []byte(tt.in), n: chunk}, tt.cfg)
				assert.Equal(t, tt.want, readAll(t, r), "chunk %d", chunk)
			}
		})
	}
}

func TestLineTooLongCount(t *testing.T) {
	r := NewReader(strings.NewReader(strings.Repeat("x", 10000)+"\r\n"), Config{MaxLine: 100})
	_, err := r.Next()
	require.ErrorIs(t, err, ErrLineTooLong)
	assert.Contains(t, err.Error(), "10000 bytes")
}

func TestFramerMemoryBounded(t *testing.T) {
	f := NewFramer(Config{MaxLine: 64, Terminator: "\r\n"})
	chunk := bytes.Repeat([]byte("y"), 1000)
	for range 1000 {
		f.Feed(chunk, func(Line, error) { t.Fatal("no line expected") })
	}
	assert.LessOrEqual(t, cap(f.buf), 64+2)
	assert.Equal(t, 1_000_000, f.Pending())
	var errs int
	f.Feed([]byte("\r\n"), func(_ Line, err error) {
		require.ErrorIs(t, err, ErrLineTooLong)
		errs++
	})
	assert.Equal(t, 1, errs)
	assert.Zero(t, f.Pending())
}

func TestRawKeepsPrefix(t *testing.T) {
	r := NewReader(strings.NewReader("\x02abc\x03\n"), Config{Prefix: "\x02", Suffix: "\x03"})
	l, err := r.Next()
	require.NoError(t, err)
	assert.Equal(t, "abc", l.Text)
	assert.Equal(t, []byte("\x02abc\x03"), l.Raw)
}

func TestReadErrorWrapped(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(strings.NewReader("a\r\n"), iotest.ErrReader(boom)), Config{})
	l, err := r.Next()
	require.NoError(t, err)
	assert.Equal(t, "a", l.Text)
	_, err = r.Next()
	require.ErrorIs(t, err, boom)
}

func TestParseTerminator(t *testing.T) {
	for in, want := range map[string]string{
		"CRLF": "\r\n", "cr": "\r", "LF": "\n", "TAB": "\t", "ETX": "\x03", "": AutoTerminator, "auto": AutoTerminator, "#": "#",
	} {
		assert.Equal(t, want, ParseTerminator(in), in)
	}
}

func TestValidate(t *testing.T) {
	require.NoError(t, Config{}.Validate())
	require.ErrorContains(t, Config{MaxLine: -1}.Validate(), "MaxLine")
	require.ErrorContains(t, Config{Terminator: "123456789"}.Validate(), "Terminator")
}

// chunkReader returns at most n bytes per Read, with a (0, nil) read
// between chunks as a serial port with a read timeout does.
type chunkReader struct {
	data []byte
	n    int
	idle bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	if c.idle = !c.idle; c.idle {
		return 0, nil
	}
	n := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[n:]
	return n, nil
}
