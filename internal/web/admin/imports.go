package admin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tidings/tidings/internal/importer"
	"github.com/tidings/tidings/internal/tidings"
)

func importRoutes() []Route {
	return []Route{
		{"GET /admin/a/{account}/lists/{id}/import", Editor, (*request).importPage},
		{"POST /admin/a/{account}/lists/{id}/import", Editor, (*request).startImport},
		{"GET /admin/a/{account}/imports/{job}", Editor, (*request).importJobPage},
	}
}

// Bounds of the in-memory job registry: the uploads being imported are held in memory
// (never written to disk in plaintext), so few run at once; finished reports are kept
// for a while and then forgotten.
const (
	maxRunningImports = 4
	maxKeptImports    = 100
	keepImportReport  = 24 * time.Hour
	importTimeout     = 2 * time.Hour
	importMaxProblems = 1000
)

// importJob is one import running in the background, owned by its account.
type importJob struct {
	ID        string
	AccountID int64
	ListID    int64
	ListName  string
	Mode      importer.Mode
	Started   time.Time

	mu       sync.Mutex
	phase    string // "checking", "importing", "done"
	rows     int
	report   importer.Report
	problem  string // the file was refused, or the import failed: nothing (more) was imported
	finished time.Time
}

// importSnapshot is a job as a page shows it, copied under the lock.
type importSnapshot struct {
	ID, ListName, Phase, Problem string
	ListID                       int64
	Mode                         importer.Mode
	Started, Finished            time.Time
	Rows                         int
	Done                         bool
	Report                       importer.Report
	Counts                       []importCount
}

type importCount struct {
	Status tidings.ImportStatus
	N      int
}

// importOrder is the order of the report's counts.
var importOrder = []tidings.ImportStatus{tidings.ImportAdded, tidings.ImportRequested, tidings.ImportAwaiting, tidings.ImportExisting,
	tidings.ImportUnsubscribed, tidings.ImportSuppressed, tidings.ImportDuplicate, tidings.ImportInvalid}

func (j *importJob) snapshot() importSnapshot {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := importSnapshot{ID: j.ID, ListName: j.ListName, ListID: j.ListID, Mode: j.Mode, Started: j.Started, Finished: j.finished,
		Phase: j.phase, Problem: j.problem, Rows: j.rows, Done: j.phase == "done", Report: j.report}
	for _, st := range importOrder {
		if n := j.report.Counts[st]; n > 0 || st == tidings.ImportAdded {
			s.Counts = append(s.Counts, importCount{Status: st, N: n})
		}
	}
	return s
}

func (j *importJob) progress(rows int) {
	j.mu.Lock()
	j.rows = rows
	j.mu.Unlock()
}

// importRegistry holds this process's jobs.
type importRegistry struct {
	mu   sync.Mutex
	jobs map[string]*importJob
}

var imports = &importRegistry{jobs: map[string]*importJob{}}

var errTooManyImports = errors.New("too many imports are running; try again in a few minutes")

// add registers a job, forgetting old finished ones; it refuses when too many run.
func (g *importRegistry) add(j *importJob) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	running := 0
	oldest, oldestAt := "", time.Time{}
	for id, x := range g.jobs {
		x.mu.Lock()
		done, finished := x.phase == "done", x.finished
		x.mu.Unlock()
		switch {
		case !done:
			running++
		case time.Since(finished) > keepImportReport:
			delete(g.jobs, id)
		case oldest == "" || finished.Before(oldestAt):
			oldest, oldestAt = id, finished
		}
	}
	if running >= maxRunningImports {
		return errTooManyImports
	}
	if len(g.jobs) >= maxKeptImports && oldest != "" {
		delete(g.jobs, oldest)
	}
	if len(g.jobs) >= maxKeptImports {
		return errTooManyImports
	}
	g.jobs[j.ID] = j
	return nil
}

// get returns the account's job; another account's is not found.
func (g *importRegistry) get(accountID int64, id string) (*importJob, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	j, ok := g.jobs[id]
	if !ok || j.AccountID != accountID {
		return nil, false
	}
	return j, true
}

// importForm is the upload form, refilled after an error (except the file: browsers
// never prefill one).
type importForm struct {
	Decl                                  declForm
	Mode, EmailColumn, NameColumn, Ignore string
}

type importData struct {
	List         tidings.List
	Form         importForm
	CanConfirm   bool // confirmation requests can be sent (a consent service is configured)
	MaxUploadMiB string
}

func (rq *request) importPage() error {
	return rq.renderImport(http.StatusOK, nil, "")
}

func (rq *request) renderImport(status int, form *importForm, errText string) error {
	id, err := rq.id("id")
	if err != nil {
		return err
	}
	l, err := rq.Store.GetList(rq.r.Context(), rq.Account.ID, id)
	if err != nil {
		return err
	}
	d := importData{List: l, CanConfirm: rq.Consent != nil,
		MaxUploadMiB: fmt.Sprintf("%.1f", float64(rq.MaxUploadBytes)/(1<<20))}
	if form != nil {
		d.Form = *form
	} else {
		d.Form = importForm{Mode: string(importer.Confirmed), Decl: declForm{LawfulBasis: string(l.LawfulBasis)}}
	}
	d.Form.Decl.Required = true
	rq.renderView(status, "import", view{Title: "Import into " + l.Name, Nav: "lists", Error: errText, Data: d})
	return nil
}

// readUpload reads the multipart form: small fields, and the file (at most
// MaxUploadBytes) into memory.
func (rq *request) readUpload() (map[string]string, []byte, error) {
	fields := map[string]string{}
	var file []byte
	gotFile := false
	mt, _, _ := mime.ParseMediaType(rq.r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return nil, nil, tidings.Invalid("file", "required", "choose a CSV file to upload")
	}
	rq.r.Body = http.MaxBytesReader(rq.w, rq.r.Body, rq.MaxUploadBytes+64<<10)
	mr, err := rq.r.MultipartReader()
	if err != nil {
		return nil, nil, tidings.Invalid("file", "unreadable", "the upload could not be read")
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		name := part.FormName()
		if name == "file" {
			file, err = io.ReadAll(io.LimitReader(part, rq.MaxUploadBytes+1))
			if err != nil {
				return nil, nil, err
			}
			if int64(len(file)) > rq.MaxUploadBytes {
				return nil, nil, &http.MaxBytesError{Limit: rq.MaxUploadBytes}
			}
			gotFile = part.FileName() != "" || len(file) > 0
			continue
		}
		v, err := io.ReadAll(io.LimitReader(part, 8<<10))
		if err != nil {
			return nil, nil, err
		}
		fields[name] = strings.TrimSpace(string(v))
	}
	if !gotFile {
		return fields, nil, tidings.Invalid("file", "required", "choose a CSV file to upload")
	}
	return fields, file, nil
}

// startImport checks the form, keeps the upload in memory and starts the import in the
// background; the browser goes to the job's page, which refreshes itself until done.
func (rq *request) startImport() error {
	id, err := rq.id("id")
	if err != nil {
		return err
	}
	l, err := rq.Store.GetList(rq.r.Context(), rq.Account.ID, id)
	if err != nil {
		return err
	}
	fields, file, err := rq.readUpload()
	form := importForm{Decl: declForm{Source: fields["source"], LawfulBasis: fields["lawful_basis"]}, Mode: fields["mode"],
		EmailColumn: fields["email_column"], NameColumn: fields["name_column"], Ignore: fields["ignore"]}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return rq.renderImport(http.StatusRequestEntityTooLarge, &form,
			fmt.Sprintf("The file is larger than the limit of %d bytes; nothing was imported.", rq.MaxUploadBytes))
	}
	if msg := formError(err); msg != "" {
		return rq.renderImport(http.StatusUnprocessableEntity, &form, msg)
	}
	if err != nil {
		return err
	}
	decl := tidings.ImportDeclaration{Source: form.Decl.Source, LawfulBasis: tidings.LawfulBasis(form.Decl.LawfulBasis)}
	if msg := formError(decl.Validate()); msg != "" {
		return rq.renderImport(http.StatusUnprocessableEntity, &form, "Declaration: "+msg)
	}
	opts := importer.Options{AccountID: rq.Account.ID, ListID: l.ID, Declaration: decl, Mode: importer.Mode(form.Mode),
		EmailColumn: form.EmailColumn, NameColumn: form.NameColumn, MaxProblems: importMaxProblems}
	for _, c := range strings.Split(form.Ignore, ",") {
		if c = strings.TrimSpace(c); c != "" {
			opts.Ignore = append(opts.Ignore, c)
		}
	}
	var request importer.Requester
	switch opts.Mode {
	case importer.Confirmed:
	case importer.SendConfirmation:
		if rq.Consent == nil {
			return rq.renderImport(http.StatusUnprocessableEntity, &form, "Mode: this server cannot send confirmation requests; import as confirmed.")
		}
		request = rq.Consent.Requester(rq.Account.ID, l.ID, decl)
	default:
		return rq.renderImport(http.StatusUnprocessableEntity, &form, "Mode: choose confirmed or ask for confirmation.")
	}
	var rnd [16]byte
	rand.Read(rnd[:])
	job := &importJob{ID: hex.EncodeToString(rnd[:]), AccountID: rq.Account.ID, ListID: l.ID, ListName: l.Name, Mode: opts.Mode,
		Started: time.Now(), phase: "checking"}
	if err := imports.add(job); err != nil {
		return rq.renderImport(http.StatusServiceUnavailable, &form, "The import did not start: "+err.Error()+".")
	}
	if err := rq.audit("import", "list "+itoa(l.ID)); err != nil {
		job.finish(importer.Report{}, "the import did not start")
		return err
	}
	log := rq.Log.With("account_id", rq.Account.ID, "list_id", l.ID, "job", job.ID)
	go job.run(rq.Store, request, file, opts, log)
	http.Redirect(rq.w, rq.r, rq.a("/imports/"+job.ID), http.StatusSeeOther)
	return nil
}

func (j *importJob) finish(rep importer.Report, problem string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.report, j.problem, j.phase, j.finished = rep, problem, "done", time.Now()
	if rep.Rows > j.rows {
		j.rows = rep.Rows
	}
}

// run checks the whole file first (CSV syntax, encoding, header) without touching the
// store, so that a bad file is refused before anyone is added or mailed; then imports.
func (j *importJob) run(store tidings.Store, request importer.Requester, file []byte, opts importer.Options, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), importTimeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			log.Error("import panicked", "panic", fmt.Sprint(v))
			j.finish(importer.Report{}, "the import failed; nothing was imported")
		}
	}()
	check := opts
	check.Progress = j.progress
	if err := importer.Check(ctx, bytes.NewReader(file), check); err != nil {
		j.finish(importer.Report{}, refusal(err))
		return
	}
	j.mu.Lock()
	j.phase, j.rows = "importing", 0
	j.mu.Unlock()
	opts.Progress = j.progress
	rep, err := importer.Run(ctx, store, request, bytes.NewReader(file), opts)
	file = nil
	if err != nil {
		var fe *importer.FileError
		if !errors.As(err, &fe) {
			log.Error("import failed", "err", err)
		}
		problem := refusal(err)
		if opts.Mode == importer.SendConfirmation && rep.Counts[tidings.ImportRequested] > 0 {
			problem = strings.Replace(problem, "nothing was imported", "the import stopped; the rows before were asked to confirm", 1)
		}
		j.finish(rep, problem)
		return
	}
	log.Info("import finished", "rows", rep.Rows)
	j.finish(rep, "")
}

// refusal says why a file was refused or an import failed, in terms of the file.
func refusal(err error) string {
	var fe *importer.FileError
	if errors.As(err, &fe) {
		return "The file was refused, nothing was imported: " + fe.Error() + "."
	}
	if v, ok := tidings.AsValidation(err); ok {
		return "The import was refused, nothing was imported: " + strings.ReplaceAll(v.Field, "_", " ") + ": " + v.Message + "."
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "The import took too long and was stopped; nothing was imported."
	}
	return "The import failed because of a server error; nothing was imported. The server log has the details."
}

func (rq *request) importJobPage() error {
	j, ok := imports.get(rq.Account.ID, rq.r.PathValue("job"))
	if !ok {
		return tidings.ErrNotFound
	}
	s := j.snapshot()
	title := "Import into " + s.ListName
	rq.renderView(http.StatusOK, "import_job", view{Title: title, Nav: "lists", Data: s})
	return nil
}
