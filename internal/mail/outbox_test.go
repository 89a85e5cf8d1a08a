package mail_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tidings/tidings/internal/mail"
)

func TestOutbox(t *testing.T) {
	dir := t.TempDir()
	o, err := mail.NewOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	msg := sample().Bytes()
	for i := range 3 {
		// The account is recorded when given (the first message is the instance's own).
		env := mail.Envelope{From: "b@books.example", To: []string{fmt.Sprintf("r%d@example.com", i), "cc@example.com"}, Account: int64(i) * 7}
		if err := o.Send(context.Background(), env, msg); err != nil {
			t.Fatal(err)
		}
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
		t.Fatalf("%d files left in tmp/", len(tmp))
	}
	list, err := o.List(2)
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %v %v", list, err)
	}
	e := list[0]
	if e.To[0] != "r2@example.com" || len(e.To) != 2 || e.From != "b@books.example" || e.Subject != sample().Subject ||
		e.Size != int64(len(msg)) || e.Time.IsZero() || !e.Time.After(list[1].Time) || e.Account != 14 || list[1].Account != 7 {
		t.Fatalf("newest entry = %+v", e)
	}
	if all, _ := o.List(0); len(all) != 3 || all[2].Account != 0 || all[2].Size != int64(len(msg)) {
		t.Fatalf("List(0) = %+v, want all 3, the oldest without an account", all)
	}
	got, err := o.Read(e.ID)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Read did not return the message as sent: %v", err)
	}
	for _, bad := range []string{"../../etc/passwd", "x", "", "1.2_3.tidings/../x", "../new/" + e.ID, e.ID + "/", "*", e.ID[:5] + "*"} {
		if _, err := o.Read(bad); !errors.Is(err, mail.ErrNoMessage) {
			t.Errorf("Read(%q) = %v", bad, err)
		}
		if err := o.Delete(bad); !errors.Is(err, mail.ErrNoMessage) {
			t.Errorf("Delete(%q) = %v", bad, err)
		}
	}
	if err := o.Delete(e.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Read(e.ID); !errors.Is(err, mail.ErrNoMessage) {
		t.Fatal("deleted message still readable")
	}
	if err := o.Delete(e.ID); !errors.Is(err, mail.ErrNoMessage) {
		t.Fatalf("second Delete = %v", err)
	}

	// A mail client that read a message moves it to cur/ with flags; it stays listed.
	id := list[1].ID
	if err := os.Rename(filepath.Join(dir, "new", id), filepath.Join(dir, "cur", id+":2,S")); err != nil {
		t.Fatal(err)
	}
	if all, _ := o.List(0); len(all) != 2 || all[0].ID != id {
		t.Fatalf("after a client read it: %+v", all)
	}
	if got, err := o.Read(id); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Read from cur/: %v", err)
	}

	// Erasure removes every message to the address, wherever it is.
	if n, err := o.Purge("CC@example.com"); err != nil || n != 2 {
		t.Fatalf("Purge = %d %v", n, err)
	}
	if all, _ := o.List(0); len(all) != 0 {
		t.Fatalf("after purge: %+v", all)
	}

	if err := o.Send(context.Background(), mail.Envelope{From: "b@books.example", To: []string{"x@example.com>\r\nX-Tidings-Envelope-To: <y@example.com"}}, msg); err == nil || mail.IsTemporary(err) {
		t.Fatalf("envelope injection: %v", err)
	}
}

func BenchmarkOutboxSend(b *testing.B) {
	o, _ := mail.NewOutbox(b.TempDir())
	msg := bigMessage().Bytes()
	b.ReportAllocs()
	for b.Loop() {
		o.Send(context.Background(), envTo("r@example.com"), msg)
	}
}
