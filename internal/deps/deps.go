//go:build tools

// Package deps pins modules that later issues use, so go mod tidy keeps them.
package deps

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/cheggaaa/pb/v3"
	_ "github.com/chromedp/chromedp"
	_ "github.com/emersion/go-message/mail"
	_ "github.com/emersion/go-msgauth/dkim"
	_ "github.com/emersion/go-sasl"
	_ "github.com/emersion/go-smtp"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/pquerna/otp/totp"
	_ "github.com/pressly/goose/v3"
	_ "golang.org/x/crypto/argon2"
	_ "golang.org/x/net/idna"
	_ "golang.org/x/time/rate"
	_ "modernc.org/sqlite"
)
