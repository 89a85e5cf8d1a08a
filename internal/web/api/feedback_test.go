package api_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/storetest"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

const hardBounce = `From: MAILER-DAEMON@mx.receiver.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.receiver.example

Final-Recipient: rfc822; gone@receiver.example
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown

--B
Content-Type: text/rfc822-headers

Return-Path: <bounces+TOKEN@news.example>
Subject: News

--B--
`

// TestFeedbackUpload: an operator uploads a bounce report; it is applied once to its
// delivery. Account tokens, other media types, non-mail bodies and recipients that are
// not return paths are refused.
func TestFeedbackUpload(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		l := tidings.NewList("News")
		e.store.CreateList(ctx, e.a.ID, &l)
		sub := tidings.Subscriber{Email: tidings.MustParseAddress("gone@receiver.example")}
		if err := e.store.CreateSubscriber(ctx, e.a.ID, &sub, []int64{l.ID}, tidings.SubConfirmed, nil); err != nil {
			t.Fatal(err)
		}
		c := tidings.Campaign{Name: "c", Subject: "s", FromAddress: "news@news.example", HTML: "x", Lists: []int64{l.ID}}
		e.store.CreateCampaign(ctx, e.a.ID, &c)
		e.store.SetCampaignStatus(ctx, e.a.ID, c.ID, tidings.CampaignSending, "")
		storetest.SendAll(t, e.store, c.ID)
		report := strings.ReplaceAll(hardBounce, "TOKEN", send.RecipientToken(testdb.Keyring(t), e.a.ID, c.ID, sub.ID))

		post := func(token, contentType, query, body string) (int, string) {
			t.Helper()
			req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/feedback"+query, strings.NewReader(body))
			req.Header.Set("Content-Type", contentType)
			req.Header.Set("Authorization", "Bearer "+token)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			out, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(out)
		}
		for _, c := range []struct {
			token, ct, query, body string
			status                 int
			says                   string
		}{
			{e.tokA, "message/rfc822", "", report, 403, ""},
			{e.operator, "text/plain", "", report, 415, "message/rfc822"},
			{e.operator, "message/rfc822", "", "\x00\x01 not mail", 400, "not_mail"},
			{e.operator, "message/rfc822", "?recipient=someone@news.example", report, 400, "recipient"},
			{e.operator, "message/rfc822", "", report, 200, `"result":"recorded"`},
			{e.operator, "message/rfc822", "", report, 200, `"result":"repeated"`},
		} {
			status, body := post(c.token, c.ct, c.query, c.body)
			if status != c.status || !strings.Contains(body, c.says) {
				t.Fatalf("POST /api/v1/feedback (%s%s): %d %s; want %d with %q", c.ct, c.query, status, body, c.status, c.says)
			}
		}
		st, err := e.store.CampaignStats(ctx, e.a.ID, c.ID)
		if err != nil || st.Bounced != 1 {
			t.Fatalf("campaign stats after the upload: %+v, %v; want 1 bounced", st, err)
		}
		if held, reason, _ := e.store.Suppressed(ctx, e.a.ID, sub.Email); !held || reason != tidings.SuppressBounce {
			t.Fatalf("the bounced address: suppressed %v (%q)", held, reason)
		}
	})
}
