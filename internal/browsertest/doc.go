// Package browsertest drives a real Chromium, headless, through the Tidings web UI: the
// first-operator setup, sign-in with two-factor, the admin pages, and the subscriber
// side (hosted sign-up form, confirmation, data portal).
//
// Everything lives in the tests: each test starts a real Tidings HTTP server in-process
// on 127.0.0.1 (SQLite store, mail into an outbox), and all tests share one browser.
// Nothing is downloaded. The browser is /usr/bin/chromium, or the one named by
// TIDINGS_CHROMIUM. Without a browser the tests skip loudly, except under CI=true,
// where they fail. On failure a full-page screenshot and the page's HTML are saved in
// $TIDINGS_SCREENSHOTS (or a kept temporary folder); the test log names the file.
//
// Writing a step: add a step{name, func} to a flow's list (TestAdmin, TestSubscriberPortal);
// the steps of a flow run in order and share state through the flow's struct. In a step,
// s.tab(t) opens a fresh tab (own cookies) and the tab's helpers each run one action with
// its own timeout and fail the test with the page's address:
//
//	open, openStatus           go to a path or URL
//	fill, choose, tick, upload type into a field, pick an option, set a checkbox, attach a file
//	click, clickStatus         click (CSS, or button("Label") / link("Text")) and wait for the next page
//	clickHere, download        click without a page load; fetch a downloaded file
//	text, attr, count, path    read the page
//	wantText, wantNoText, wantPath, reloadUntil
//
// The server side: s.setupLink, s.account, s.staff, s.store for what the UI cannot do yet,
// s.mail(to, subject) for the plain text of an outbox mail and s.link(text, "/path") for
// a link in it.
//
// Run them with: go test ./internal/browsertest/
package browsertest
