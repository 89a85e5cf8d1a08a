package main

import (
	"context"
	"fmt"
)

// cmdBackup writes a consistent copy of the data or of the key store while Tidings
// runs. They are backed up apart, on different rotations: the data as long as the
// operator likes, the keys briefly, so that erased people cannot be restored.
func cmdBackup(ctx context.Context, e env, args []string) error {
	fs, load := newFlags("backup", e)
	data := fs.String("data", "", "write a copy of the data (without keys) to this new file")
	keyFile := fs.String("keys", "", "write a copy of the key store (without data) to this new file")
	if err := parse(fs, args); err != nil {
		return err
	}
	if (*data == "") == (*keyFile == "") {
		return fmt.Errorf("%w: backup --data FILE | backup --keys FILE", errUsage)
	}
	a, err := openLoaded(ctx, e, load)
	if err != nil {
		return err
	}
	defer a.Close()
	path, keys := *data, false
	if *keyFile != "" {
		path, keys = *keyFile, true
	}
	if err := a.store.Backup(ctx, keys, path); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "written:", path)
	return nil
}
