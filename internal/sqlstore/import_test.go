package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// TestBigImportBuildsTheEmailIndexAgain: a SQLite import past the threshold drops the
// persons' unique email index and builds it again at its end (sqlstore/import.go,
// deferIndex). The index is back after a commit and after a rollback, addresses are
// still found through it, its uniqueness holds, and the writer checks foreign keys after
// migration 34, which copies the persons table with the checks off.
func TestBigImportBuildsTheEmailIndexAgain(t *testing.T) {
	ctx := context.Background()
	s := testdb.Open(t, sqlstore.SQLite)
	sqlstore.SetDeferIndexAfter(t, 10)
	index, fks, err := s.SchemaSQL(ctx, "persons_email_hash")
	if err != nil || index == "" || !fks {
		t.Fatalf("after the migrations: index %q, foreign keys %v, %v", index, fks, err)
	}
	a := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
	if err := s.CreateAccount(ctx, &a); err != nil {
		t.Fatal(err)
	}
	l := tidings.NewList("News")
	if err := s.CreateList(ctx, a.ID, &l); err != nil {
		t.Fatal(err)
	}
	decl := tidings.ImportDeclaration{Source: "shop checkout", LawfulBasis: "consent"}
	rows := func(from, n int) []tidings.ImportRow {
		var out []tidings.ImportRow
		for i := from; i < from+n; i++ {
			out = append(out, tidings.ImportRow{Row: i + 2, Email: tidings.MustParseAddress(fmt.Sprintf("person%d@people.example", i))})
		}
		return out
	}
	importRows := func(batches ...[]tidings.ImportRow) (tidings.Importer, map[tidings.ImportStatus]int) {
		t.Helper()
		im, err := s.BeginImport(ctx, a.ID, l.ID, decl)
		if err != nil {
			t.Fatal(err)
		}
		counts := map[tidings.ImportStatus]int{}
		for _, b := range batches {
			res, err := im.Add(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				counts[r.Status]++
			}
		}
		return im, counts
	}
	mustHaveIndex := func(when string) {
		t.Helper()
		if got, _, err := s.SchemaSQL(ctx, "persons_email_hash"); err != nil || got != index {
			t.Fatalf("%s: the persons' email index is %q (%v), want %q", when, got, err, index)
		}
	}

	// 10 persons, under the threshold; then 40 new persons, 10 before: the index goes
	// at the second import's second batch and comes back.
	im, counts := importRows(rows(0, 10))
	if err := im.Commit(); err != nil {
		t.Fatal(err)
	}
	if counts[tidings.ImportAdded] != 10 {
		t.Fatalf("first import: %v, want 10 added", counts)
	}
	im, counts = importRows(rows(10, 15), rows(25, 25))
	if err := im.Commit(); err != nil {
		t.Fatal(err)
	}
	if counts[tidings.ImportAdded] != 40 {
		t.Fatalf("second import: %v, want 40 added", counts)
	}
	mustHaveIndex("after a commit")

	// A rolled-back import past the threshold leaves the index, and no one, behind.
	im, counts = importRows(rows(50, 30), rows(80, 30))
	if counts[tidings.ImportAdded] != 60 {
		t.Fatalf("rolled-back import: %v, want 60 added before the rollback", counts)
	}
	if err := im.Rollback(); err != nil {
		t.Fatal(err)
	}
	mustHaveIndex("after a rollback")

	// Everyone is found again through the rebuilt index: the same rows again are
	// already subscribed, and the rolled-back ones are new.
	im, counts = importRows(rows(0, 50), rows(50, 60))
	if err := im.Commit(); err != nil {
		t.Fatal(err)
	}
	if counts[tidings.ImportExisting] != 50 || counts[tidings.ImportAdded] != 60 {
		t.Fatalf("import again: %v, want 50 existing and 60 added", counts)
	}
	mustHaveIndex("after the second commit")

	// The index still refuses a second person with the same address.
	if err := s.DuplicatePerson(ctx, "person7@people.example"); !errors.Is(err, tidings.ErrConflict) {
		t.Fatalf("a second person with a known address: %v, want a conflict", err)
	}
}
