package mail

import (
	"bufio"
	"errors"
	"net/textproto"
	"strings"
	"testing"
)

func TestReplyLinesAreBounded(t *testing.T) {
	ok := "250-first\r\n250 " + strings.Repeat("x", maxReplyLine-10) + "\r\n"
	r := textproto.NewReader(bufio.NewReader(&lineLimit{r: strings.NewReader(ok)}))
	if _, _, err := r.ReadResponse(250); err != nil {
		t.Fatalf("a long but bounded reply: %v", err)
	}
	endless := "250 " + strings.Repeat("x", 10*maxReplyLine)
	r = textproto.NewReader(bufio.NewReader(&lineLimit{r: strings.NewReader(endless)}))
	if _, _, err := r.ReadResponse(250); !errors.Is(err, errReplyTooLong) {
		t.Fatalf("an endless reply line: %v, want %v", err, errReplyTooLong)
	}
}
