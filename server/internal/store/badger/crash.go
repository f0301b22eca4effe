package badger

import (
	"fmt"
	"os"
	"path/filepath"
)

// removeEmptyMemtables deletes the zero-length memtable files (*.mem) in
// dir. Badger deletes a flushed memtable's file by truncating it to zero
// and then removing it; a process killed between the two (kill -9 or
// power loss while a flush ends) leaves an empty file that Badger's Open
// refuses ("Create a new file"), so the server could not start again. An
// empty memtable file holds nothing: a live one starts with its header,
// and its data was flushed to a table before the truncation.
func removeEmptyMemtables(dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, "*.mem"))
	if err != nil {
		return err
	}
	for _, name := range names {
		fi, err := os.Stat(name)
		if err != nil || fi.Size() != 0 || !fi.Mode().IsRegular() {
			continue
		}
		if err := os.Remove(name); err != nil {
			return fmt.Errorf("remove the empty memtable file a crash left: %w", err)
		}
	}
	return nil
}
