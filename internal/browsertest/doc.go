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
// Run them with: go test ./internal/browsertest/
package browsertest
