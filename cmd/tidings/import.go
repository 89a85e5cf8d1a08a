package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/cheggaaa/pb/v3"
	"github.com/mattn/go-isatty"

	"github.com/tidings/tidings/internal/importer"
	"github.com/tidings/tidings/internal/tidings"
)

func cmdImport(ctx context.Context, e env, args []string) error {
	fs, load := newFlags("import", e)
	account := fs.String("account", "", "ID of the account (required)")
	list := fs.String("list", "", "ID of the list to import into (required)")
	source := fs.String("source", "", "declaration: where the addresses came from (required)")
	basis := fs.String("basis", "", "declaration: lawful basis, e.g. consent (required)")
	mode := fs.String("mode", "confirmed", "confirmed (mark confirmed under the declaration) or send_confirmation (double opt-in)")
	emailCol := fs.String("email-column", "", "header of the email column (default: auto-detect)")
	nameCol := fs.String("name-column", "", "header of the name column (default: auto-detect)")
	ignore := fs.String("ignore", "", "comma-separated columns not to import as attributes")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	// The file may come before or after the flags.
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	accountID, err1 := strconv.ParseInt(*account, 10, 64)
	listID, err2 := strconv.ParseInt(*list, 10, 64)
	if file == "" || err1 != nil || err2 != nil {
		return fmt.Errorf("%w: tidings import FILE --account ID --list ID --source TEXT --basis BASIS", errUsage)
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	a, err := openLoaded(ctx, e, load)
	if err != nil {
		return err
	}
	defer a.Close()
	decl := tidings.ImportDeclaration{Source: *source, LawfulBasis: tidings.LawfulBasis(*basis)}
	opts := importer.Options{AccountID: accountID, ListID: listID, Declaration: decl, Mode: importer.Mode(*mode),
		EmailColumn: *emailCol, NameColumn: *nameCol}
	if *ignore != "" {
		opts.Ignore = strings.Split(*ignore, ",")
	}
	if opts.Mode == importer.SendConfirmation {
		// Asking people to confirm is not one transaction: a file refused partway would
		// have mailed the rows before it. The whole file is checked first.
		if err := importer.Check(ctx, f, opts); err != nil {
			return fmt.Errorf("nothing was imported: %w", err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
	}
	var in io.Reader = f
	var bar *pb.ProgressBar
	if st, err := f.Stat(); err == nil && isTerminal(e.stderr) && !*asJSON {
		bar = pb.Full.Start64(st.Size())
		bar.SetWriter(e.stderr)
		bar.Set(pb.Bytes, true)
		in = bar.NewProxyReader(f)
		defer bar.Finish()
	}
	rep, err := importer.Run(ctx, a.store, a.consent.Requester(accountID, listID, decl), in, opts)
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		if n := rep.Counts[tidings.ImportRequested]; n > 0 {
			return fmt.Errorf("the import stopped partway; %d people were already asked to confirm: %w", n, err)
		}
		return fmt.Errorf("nothing was imported: %w", err)
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(rep)
	}
	printReport(e.stdout, rep)
	return nil
}

func printReport(w io.Writer, rep importer.Report) {
	fmt.Fprintf(w, "%d rows read\n", rep.Rows)
	var statuses []string
	for s := range rep.Counts {
		statuses = append(statuses, string(s))
	}
	sort.Strings(statuses)
	for _, s := range statuses {
		fmt.Fprintf(w, "  %-22s %d\n", s, rep.Counts[tidings.ImportStatus(s)])
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintln(w, "\nRows not added:")
		for i, p := range rep.Problems {
			if i == 50 {
				fmt.Fprintf(w, "  … and %d more (use --json for all)\n", len(rep.Problems)-50)
				break
			}
			fmt.Fprintf(w, "  row %d: %s — %s\n", p.Row, p.Status, p.Reason)
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}
