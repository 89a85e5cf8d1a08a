// Package send is the campaign engine: sandboxed templates, per-recipient rendering,
// and the sending loop (plan → claim batches → render → sign → deliver → record).
package send

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"regexp"
	"strings"
	"sync"
	texttemplate "text/template"
	"text/template/parse"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

// Data is everything a campaign template can see: the recipient, the sender, and the
// links every mail needs. Nothing here reaches the host (no environment, files or
// network), and the function map below is the complete list of functions.
type Data struct {
	Subscriber     SubscriberData
	Account        AccountData
	Campaign       CampaignData
	UnsubscribeURL string
	PortalURL      string
	PreferencesURL string
}

// SubscriberData is the recipient as templates see it.
type SubscriberData struct {
	Email      string
	Name       string
	Attributes map[string]any
}

// AccountData is the sender as templates see it.
type AccountData struct{ Name, PostalAddress, ContactEmail, PrivacyPolicyURL string }

// CampaignData names the campaign.
type CampaignData struct{ Name, Subject string }

// funcs is the sandbox: formatting helpers only.
var funcs = map[string]any{
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"trim":  strings.TrimSpace,
	"title": func(s string) string {
		words := strings.Fields(s)
		for i, w := range words {
			r := []rune(w)
			r[0] = []rune(strings.ToUpper(string(r[0])))[0]
			words[i] = string(r)
		}
		return strings.Join(words, " ")
	},
	"default": func(def string, v any) any {
		if v == nil || v == "" {
			return def
		}
		return v
	},
	"truncate": func(n int, s string) string {
		if r := []rune(s); len(r) > n {
			return string(r[:n]) + "…"
		}
		return s
	},
	"date": func(layout string, t time.Time) string { return t.Format(layout) },
}

// MaxOutput bounds what one template may produce, so a template cannot exhaust memory
// (e.g. with a huge range).
const MaxOutput = 4 << 20

// Template is a compiled campaign: subject, HTML and text bodies.
type Template struct {
	subject *texttemplate.Template
	html    *htmltemplate.Template
	text    *texttemplate.Template
}

var lineRE = regexp.MustCompile(`^template: \w+:(\d+)(?::\d+)?: (.*)$`)

// templateError turns a template error into a validation error that names the field and
// the line.
func templateError(field string, err error) error {
	msg := err.Error()
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		msg = "line " + m[1] + ": " + m[2]
	}
	return tidings.Invalid(field, "template", "%s", msg)
}

// Compile parses a campaign's templates, and renders them once for a sample recipient so
// that mistakes (unknown functions, unknown fields) show when saving, not when sending.
func Compile(c tidings.Campaign) (*Template, error) {
	t := &Template{}
	var err error
	if t.subject, err = texttemplate.New("subject").Funcs(funcs).Option("missingkey=zero").Parse(c.Subject); err != nil {
		return nil, templateError("subject", err)
	}
	if c.HTML != "" {
		if t.html, err = htmltemplate.New("html").Funcs(funcs).Option("missingkey=zero").Parse(c.HTML); err != nil {
			return nil, templateError("html", err)
		}
	}
	text := c.Text
	if text == "" && c.HTML != "" {
		text = HTMLToText(c.HTML)
	}
	if text != "" {
		if t.text, err = texttemplate.New("text").Funcs(funcs).Option("missingkey=zero").Parse(text); err != nil {
			return nil, templateError("text", err)
		}
	}
	sample := Data{Subscriber: SubscriberData{Email: "sample@example.com", Name: "Sample Person", Attributes: map[string]any{}},
		Account: AccountData{Name: "Sample"}, Campaign: CampaignData{Name: c.Name, Subject: c.Subject},
		UnsubscribeURL: "https://example.com/u/x", PortalURL: "https://example.com/portal", PreferencesURL: "https://example.com/portal"}
	if err := bounded("subject", t.subject.Tree); err != nil {
		return nil, err
	}
	if t.html != nil {
		if err := bounded("html", t.html.Tree); err != nil {
			return nil, err
		}
	}
	if t.text != nil {
		if err := bounded("text", t.text.Tree); err != nil {
			return nil, err
		}
	}
	if _, err := t.Render(sample); err != nil {
		return nil, err
	}
	return t, nil
}

// maxRangeDepth is how deeply ranges may nest: subscriber attributes hold at most a few
// thousand values, so two levels are at most millions of steps.
const maxRangeDepth = 2

// bounded checks that a template's work is bounded by the subscriber's data, since the
// output cap does not stop a loop that writes nothing (Go templates range over integers:
// {{range 9000000000000000000}}{{end}} would run for centuries). A range goes over a data
// field only (never a number, a variable or dot, which a with or template call could
// have made a number), ranges nest at most maxRangeDepth deep, and templates do not call
// templates (no recursion, and dot and $ stay the data).
func bounded(field string, tree *parse.Tree) error {
	if tree == nil || tree.Root == nil {
		return nil
	}
	fail := func(n parse.Node, format string, args ...any) error {
		loc, _ := tree.ErrorContext(n)
		msg := fmt.Sprintf(format, args...)
		if i := strings.IndexByte(loc, ':'); i >= 0 { // "name:line:col"
			if line, _, _ := strings.Cut(loc[i+1:], ":"); line != "" {
				msg = "line " + line + ": " + msg
			}
		}
		return tidings.Invalid(field, "template", "%s", msg)
	}
	var walk func(n parse.Node, depth int) error
	walk = func(n parse.Node, depth int) error {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return nil
			}
			for _, c := range n.Nodes {
				if err := walk(c, depth); err != nil {
					return err
				}
			}
		case *parse.IfNode:
			return walkBranch(walk, &n.BranchNode, depth)
		case *parse.WithNode:
			return walkBranch(walk, &n.BranchNode, depth)
		case *parse.RangeNode:
			if depth >= maxRangeDepth {
				return fail(n, "ranges may nest at most %d deep", maxRangeDepth)
			}
			if !dataField(n.Pipe) {
				return fail(n, "range goes over a data field only, such as {{range .Subscriber.Attributes.tags}}")
			}
			if err := walk(n.List, depth+1); err != nil {
				return err
			}
			return walk(n.ElseList, depth)
		case *parse.TemplateNode:
			return fail(n, "templates cannot call templates ({{template}} or {{block}})")
		}
		return nil
	}
	return walk(tree.Root, 0)
}

func walkBranch(walk func(parse.Node, int) error, b *parse.BranchNode, depth int) error {
	if err := walk(b.List, depth); err != nil {
		return err
	}
	return walk(b.ElseList, depth)
}

// dataField reports whether a range pipeline is a field of the data (.A.B, $.A.B, $x.A),
// possibly looked up with index: such a value is a map, list, string or JSON number,
// never an integer to count up to.
func dataField(p *parse.PipeNode) bool {
	if p == nil || len(p.Cmds) != 1 {
		return false
	}
	args := p.Cmds[0].Args
	isField := func(n parse.Node) bool {
		switch n := n.(type) {
		case *parse.FieldNode:
			return true
		case *parse.VariableNode:
			return len(n.Ident) > 1
		}
		return false
	}
	if len(args) == 1 {
		return isField(args[0])
	}
	if id, ok := args[0].(*parse.IdentifierNode); ok && id.Ident == "index" && len(args) >= 2 {
		return isField(args[1])
	}
	return false
}

// Rendered is one recipient's content.
type Rendered struct{ Subject, HTML, Text string }

// limitedBuffer refuses to grow past MaxOutput.
type limitedBuffer struct{ bytes.Buffer }

var errTooLarge = errors.New("the template produces more than 4 MiB")

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > MaxOutput {
		return 0, errTooLarge
	}
	return b.Buffer.Write(p)
}

// renderBuffers keeps output buffers between recipients: growing a fresh one to the
// size of a campaign's HTML took several copies per message.
var renderBuffers = sync.Pool{New: func() any { return new(limitedBuffer) }}

// Render executes the templates for one recipient.
func (t *Template) Render(d Data) (Rendered, error) {
	var r Rendered
	b := renderBuffers.Get().(*limitedBuffer)
	defer func() {
		if b.Cap() <= 256<<10 { // don't keep the odd huge one
			b.Reset()
			renderBuffers.Put(b)
		}
	}()
	b.Reset()
	if err := t.subject.Execute(b, d); err != nil {
		return r, templateError("subject", err)
	}
	r.Subject = strings.Join(strings.Fields(b.String()), " ")
	if t.html != nil {
		b.Reset()
		if err := t.html.Execute(b, d); err != nil {
			return r, templateError("html", err)
		}
		r.HTML = b.String()
	}
	if t.text != nil {
		b.Reset()
		if err := t.text.Execute(b, d); err != nil {
			return r, templateError("text", err)
		}
		r.Text = b.String()
	}
	return r, nil
}
