package mailtest

import (
	"bytes"
	"errors"
	"io"

	_ "github.com/emersion/go-message/charset" // decode parts in any charset a message names
	gomail "github.com/emersion/go-message/mail"
)

// Parts decodes a message's inline text/plain and text/html parts (one part or
// multipart, transfer encoding and charset undone); a message with neither is an error.
func Parts(raw []byte) (text, html string, err error) {
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		return "", "", err
	}
	found := false
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", "", err
		}
		h, ok := p.Header.(*gomail.InlineHeader)
		if !ok {
			continue
		}
		b, err := io.ReadAll(p.Body)
		if err != nil {
			return "", "", err
		}
		switch ct, _, _ := h.ContentType(); ct {
		case "text/plain":
			text, found = string(b), true
		case "text/html":
			html, found = string(b), true
		}
	}
	if !found {
		return "", "", errors.New("no text/plain or text/html part")
	}
	return text, html, nil
}
