package secretsfile

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var errBad = errors.New("bad file")

func TestLinesSkipsCommentsAndNamesTheFailingLine(t *testing.T) {
	var seen []string
	err := Lines([]byte("# head\n\n  a 1  \n#x\nb 2\nc 3\n"), 1<<10, errBad, func(n int, s string) error {
		seen = append(seen, s)
		if s == "c 3" {
			return errors.New("no c")
		}
		return nil
	})
	require.ErrorIs(t, err, errBad)
	require.EqualError(t, err, "bad file: line 6: no c")
	require.Equal(t, []string{"a 1", "b 2", "c 3"}, seen)
}

func TestLinesRefusesOversizedFilesAndLines(t *testing.T) {
	ok := func(int, string) error { return nil }
	require.ErrorIs(t, Lines(make([]byte, 11), 10, errBad, ok), errBad)
	long := []byte("x\n" + strings.Repeat("y", 70<<10) + "\n")
	err := Lines(long, 1<<20, errBad, ok)
	require.ErrorIs(t, err, errBad)
	require.Contains(t, err.Error(), "line 2")
}
