package proxydial

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// connectReadBufferSize is the bufio size used to read the CONNECT reply.
// Bytes the proxy sends after the header and that land in this buffer are
// handed to the caller before anything else read from the tunnel.
const connectReadBufferSize = 4 << 10

// aLongTimeAgo is a deadline in the past that aborts blocked I/O at once.
var aLongTimeAgo = time.Unix(1, 0)

// dialConnect opens a tunnel to target through an HTTP proxy.
func (d *Dialer) dialConnect(ctx context.Context, target string) (net.Conn, error) {
	if err := validateAuthority(target); err != nil {
		return nil, err
	}
	conn, err := d.opts.Forward.DialContext(ctx, "tcp", d.proxyAddr)
	if err != nil {
		return nil, fmt.Errorf("proxydial: dial HTTP proxy %s: %w", d.redacted, err)
	}
	c, err := connectHandshake(ctx, conn, target, d.authz, d.opts.MaxConnectResponseBytes)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("proxydial: HTTP proxy %s: CONNECT %s: %w", d.redacted, target, err)
	}
	return c, nil
}

// validateAuthority refuses targets that would let a caller inject header
// lines or request-line fields into the CONNECT request.
func validateAuthority(target string) error {
	for i := 0; i < len(target); i++ {
		if b := target[i]; b <= ' ' || b == 0x7f {
			return fmt.Errorf("proxydial: target %q contains a control or space character", target)
		}
	}
	return nil
}

// connectHandshake sends the CONNECT request on conn and reads the reply,
// bounded by ctx. On success it returns conn, wrapped if the proxy already
// sent tunnel bytes after its header.
func connectHandshake(ctx context.Context, conn net.Conn, target, authz string, maxHeader int) (net.Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return nil, err
		}
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })

	req := make([]byte, 0, 128+len(target)*2+len(authz))
	req = append(req, "CONNECT "...)
	req = append(req, target...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, target...)
	req = append(req, "\r\n"...)
	if authz != "" {
		req = append(req, "Proxy-Authorization: "...)
		req = append(req, authz...)
		req = append(req, "\r\n"...)
	}
	req = append(req, "\r\n"...)

	var (
		resp connectResponse
		br   *bufio.Reader
	)
	_, err := conn.Write(req)
	if err == nil {
		br = bufio.NewReaderSize(conn, connectReadBufferSize)
		resp, err = readConnectResponse(br, maxHeader)
	}
	if !stop() {
		// The context ended; its AfterFunc may still be poisoning the
		// deadline, so the connection is unusable whatever happened.
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if resp.statusCode/100 != 2 {
		err := fmt.Errorf("proxy answered %d %s", resp.statusCode, resp.reason)
		if resp.statusCode == 407 {
			err = fmt.Errorf("%w: %w", ErrProxyAuth, err)
		}
		return nil, err
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	if n := br.Buffered(); n > 0 {
		early, _ := br.Peek(n)
		return &prefixConn{Conn: conn, pending: append([]byte(nil), early...)}, nil
	}
	return conn, nil
}

// connectResponse is the part of a CONNECT reply header the dialer needs.
// Header fields are validated and kept for tests and error messages.
type connectResponse struct {
	minor      int // HTTP/1.minor
	statusCode int
	reason     string
	header     [][2]string
}

// Errors of readConnectResponse; callers add the proxy and target.
var (
	errHeaderTooLarge = errors.New("response header too large")
	errMalformed      = errors.New("malformed response")
)

// readConnectResponse reads an HTTP/1.x response header from r, consuming at
// most limit bytes, and stops right after the empty line that ends it. Lines
// may end in CRLF or a bare LF. Obsolete line folding is rejected.
func readConnectResponse(r *bufio.Reader, limit int) (connectResponse, error) {
	var resp connectResponse
	remaining := limit
	line, err := readHeaderLine(r, &remaining)
	if err != nil {
		return resp, err
	}
	if err := parseStatusLine(line, &resp); err != nil {
		return resp, err
	}
	for {
		line, err := readHeaderLine(r, &remaining)
		if err != nil {
			return resp, err
		}
		if len(line) == 0 {
			return resp, nil
		}
		name, value, err := parseHeaderField(line)
		if err != nil {
			return resp, err
		}
		resp.header = append(resp.header, [2]string{name, value})
	}
}

// readHeaderLine returns the next line without its line ending, charging its
// length against *remaining.
func readHeaderLine(r *bufio.Reader, remaining *int) ([]byte, error) {
	var line []byte
	for {
		if *remaining <= 0 {
			return nil, errHeaderTooLarge
		}
		b, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: proxy closed the connection inside the response header: %w", errMalformed, io.ErrUnexpectedEOF)
			}
			return nil, err
		}
		*remaining--
		if b == '\n' {
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return line, nil
		}
		line = append(line, b)
	}
}

// parseStatusLine parses "HTTP/1.x SP 3DIGIT [SP reason]" (RFC 9112, 4).
func parseStatusLine(line []byte, resp *connectResponse) error {
	s := string(line)
	if len(s) < len("HTTP/1.x 200") || !strings.HasPrefix(s, "HTTP/1.") || s[8] != ' ' {
		return fmt.Errorf("%w: bad status line %q", errMalformed, clip(s))
	}
	if s[7] < '0' || s[7] > '9' {
		return fmt.Errorf("%w: bad HTTP version in %q", errMalformed, clip(s))
	}
	resp.minor = int(s[7] - '0')
	code := s[9:12]
	for i := 0; i < 3; i++ {
		if code[i] < '0' || code[i] > '9' {
			return fmt.Errorf("%w: bad status code in %q", errMalformed, clip(s))
		}
	}
	resp.statusCode, _ = strconv.Atoi(code)
	if resp.statusCode < 100 {
		return fmt.Errorf("%w: bad status code in %q", errMalformed, clip(s))
	}
	rest := s[12:]
	if rest != "" {
		if rest[0] != ' ' {
			return fmt.Errorf("%w: bad status line %q", errMalformed, clip(s))
		}
		rest = rest[1:]
	}
	if !validFieldText(rest) {
		return fmt.Errorf("%w: control character in reason phrase", errMalformed)
	}
	resp.reason = rest
	return nil
}

// parseHeaderField parses "name: value" (RFC 9112, 5).
func parseHeaderField(line []byte) (name, value string, err error) {
	s := string(line)
	if s[0] == ' ' || s[0] == '\t' {
		return "", "", fmt.Errorf("%w: obsolete header line folding", errMalformed)
	}
	colon := strings.IndexByte(s, ':')
	if colon <= 0 {
		return "", "", fmt.Errorf("%w: bad header line %q", errMalformed, clip(s))
	}
	name = s[:colon]
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return "", "", fmt.Errorf("%w: bad header name %q", errMalformed, clip(name))
		}
	}
	value = strings.Trim(s[colon+1:], " \t")
	if !validFieldText(value) {
		return "", "", fmt.Errorf("%w: control character in header %q", errMalformed, clip(name))
	}
	return name, value, nil
}

func validFieldText(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; (b < ' ' && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}

// isTokenChar reports whether b may appear in an HTTP token (RFC 9110, 5.6.2).
func isTokenChar(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

// clip shortens peer-supplied text quoted in error messages.
func clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// prefixConn returns bytes the proxy sent right after its CONNECT reply
// before reading from the connection itself.
type prefixConn struct {
	net.Conn
	pending []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite shuts down the writing side when the underlying connection
// supports it (as *net.TCPConn does).
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("proxydial: %T does not support CloseWrite", c.Conn)
}
