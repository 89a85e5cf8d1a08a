package mail

import "bytes"

// appendQP writes body quoted-printable encoded, byte for byte what the standard
// library's quotedprintable.Writer (text mode) writes followed by Close: lines of at
// most 76 characters with "=" soft breaks, CR, LF and CRLF all made CRLF, "=" and bytes
// outside printable ASCII encoded, and a space or tab before a line break encoded. The
// standard writer passes every byte through two calls and a line buffer; this copies
// runs of plain text at once. TestQPMatchesStandardLibrary compares the two.
func appendQP(b *bytes.Buffer, body string) {
	b.Grow(len(body) + len(body)/4)
	b.Write(qpAppend(b.AvailableBuffer(), body))
}

const qpLine = 76 // the standard writer's line limit, "=" of a soft break included

// qpPlain marks the bytes written as they are: printable ASCII but "=", space and tab.
var qpPlain = func() (t [256]bool) {
	for c := '!'; c <= '~'; c++ {
		t[c] = c != '='
	}
	t[' '], t['\t'] = true, true
	return t
}()

func qpAppend(out []byte, body string) []byte {
	col := 0    // characters on the current output line
	cr := false // the last line break was a CR: a LF right after it belongs to it
	for i := 0; i < len(body); {
		c := body[i]
		switch {
		case qpPlain[c]:
			j := i + 1
			for j < len(body) && qpPlain[body[j]] {
				j++
			}
			for i < j {
				if col == qpLine-1 {
					out = append(out, "=\r\n"...)
					col = 0
				}
				n := min(j-i, qpLine-1-col)
				out = append(out, body[i:i+n]...)
				col += n
				i += n
			}
			cr = false
			continue
		case c == '\n' || c == '\r':
			if !(cr && c == '\n') {
				out, col = qpLineEnd(out, col)
				out = append(out, '\r', '\n')
				col = 0
			}
			cr = c == '\r'
		default:
			// Like the standard writer, an encoded byte leaves cr as it was.
			out, col = qpEncode(out, col, c)
		}
		i++
	}
	out, _ = qpLineEnd(out, col)
	return out
}

// qpLineEnd encodes a space or tab that would end a line (the standard writer's
// checkLastByte).
func qpLineEnd(out []byte, col int) ([]byte, int) {
	if col > 0 {
		if last := out[len(out)-1]; last == ' ' || last == '\t' {
			return qpEncode(out[:len(out)-1], col-1, last)
		}
	}
	return out, col
}

func qpEncode(out []byte, col int, c byte) ([]byte, int) {
	const hex = "0123456789ABCDEF"
	if qpLine-1-col < 3 {
		out = append(out, "=\r\n"...)
		col = 0
	}
	return append(out, '=', hex[c>>4], hex[c&0x0f]), col + 3
}
