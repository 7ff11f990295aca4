package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// MkdirAllSynced is os.MkdirAll, with every directory it creates made
// durable: each new directory's entry in its parent is fsynced, so that a
// crash cannot leave a data directory, or its snapshots/, without the
// files acknowledged in it.
func MkdirAllSynced(dir string) error {
	dir = filepath.Clean(dir)
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("storage: %s is not a directory", dir)
		}
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAllSynced(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return SyncDir(parent)
}
