package resume

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const vectorsFile = "testdata/vectors.json"

// The JSON schema of testdata/vectors.json; testdata/README.md documents it.
type vectorFile struct {
	Comment            string          `json:"comment"`
	Version            int             `json:"version"`
	ServerStaticPriv   string          `json:"server_static_private"`
	ServerStaticPub    string          `json:"server_static_public"`
	ServerStaticPinned string          `json:"server_static_public_b64url"`
	Frames             []frameVector   `json:"frames"`
	Refuse             []refuseVector  `json:"refuse"`
	Stream             streamVector    `json:"stream"`
	Handshakes         []sessionVector `json:"sessions"`
}

type frameVector struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Flags     int    `json:"flags"`
	Num       uint64 `json:"num"`
	Ack       uint64 `json:"ack"`
	Code      int    `json:"code"`
	Payload   string `json:"payload_hex"`
	Plaintext string `json:"plaintext"`
	// Ciphertext is set in session transcripts: the sealed transport message.
	Ciphertext string `json:"ciphertext,omitempty"`
}

type refuseVector struct {
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

type streamVector struct {
	Preamble string   `json:"preamble"`
	Messages []string `json:"messages"`
	Bytes    string   `json:"bytes"`
}

type handshakeVector struct {
	Protocol           string        `json:"protocol_name"`
	ClientEphemeral    string        `json:"client_ephemeral_private"`
	ServerEphemeral    string        `json:"server_ephemeral_private"`
	ClientWindow       uint32        `json:"client_window"`
	ResumeCounter      uint64        `json:"resume_counter,omitempty"`
	Prologue           string        `json:"prologue"`
	ClientHello        string        `json:"client_hello"`
	ClientHelloPayload string        `json:"client_hello_payload"`
	SessionID          string        `json:"session_id"`
	ServerDelivered    uint64        `json:"server_delivered"`
	ServerWindow       uint32        `json:"server_window"`
	TTL                uint32        `json:"ttl_seconds"`
	ServerHelloPayload string        `json:"server_hello_payload"`
	ServerHello        string        `json:"server_hello"`
	HandshakeHash      string        `json:"handshake_hash"`
	ClientToServer     []frameVector `json:"client_to_server"`
	ServerToClient     []frameVector `json:"server_to_client"`
}

type sessionVector struct {
	Name    string `json:"name"`
	Suite   int    `json:"suite"`
	Pattern int    `json:"pattern"`
	// PlainInTLS: the client hellos carry PLAIN_IN_TLS and FrameMode is the
	// server's answer (docs/protocol.md §5.7); both absent otherwise.
	PlainInTLS   bool            `json:"plain_in_tls,omitempty"`
	FrameMode    *int            `json:"frame_mode,omitempty"`
	First        handshakeVector `json:"first"`
	ResumeSecret string          `json:"resume_secret"`
	Resume       handshakeVector `json:"resume"`
}

func vecKey(label string) []byte {
	h := sha256.Sum256([]byte("dualgate test vector " + label))
	return h[:]
}

func hx(b []byte) string { return hex.EncodeToString(b) }

func frameName(t byte) string {
	return map[byte]string{frameConfirm: "CONFIRM", frameData: "DATA", frameAck: "ACK",
		framePing: "PING", framePong: "PONG", frameClose: "CLOSE"}[t]
}

func frameVec(name string, f frame) frameVector {
	return frameVector{Name: name, Type: frameName(f.typ), Flags: int(f.flags), Num: f.num, Ack: f.ack,
		Code: int(f.code), Payload: hx(f.payload), Plaintext: hx(appendFrame(nil, &f))}
}

// sealVecs seals frames in order with the sender's keys, as the link
// encodes them, and checks that the peer opens them. With plain (a
// plain-in-TLS transport) every frame but CONFIRM is the message itself.
// The sender sheds its cipher state after every other frame, as a quiet
// link does, so the vectors also check that a rebuilt state continues the
// nonce sequence.
func sealVecs(t testing.TB, sender, receiver handshakeResult, plain bool, names []string, fs []frame) []frameVector {
	var out []frameVector
	recv := receiver.recv
	l := &link{send: newSheddingCipher(sender.suite, sender.send), plain: plain}
	for i, f := range fs {
		if i%2 == 1 {
			l.send.shed()
		}
		v := frameVec(names[i], f)
		seal := !plain || f.typ == frameConfirm
		ct, err := l.encodeFrame(nil, appendFrame(nil, &f), seal)
		if err != nil {
			t.Fatal(err)
		}
		var g frame
		if seal {
			g, _, err = openFrame(recv, nil, ct)
		} else {
			g, err = parseFrame(ct)
		}
		if err != nil {
			t.Fatalf("%s: open: %v", names[i], err)
		}
		if !bytes.Equal(appendFrame(nil, &g), appendFrame(nil, &f)) {
			t.Fatalf("%s: round trip mismatch", names[i])
		}
		v.Ciphertext = hx(ct)
		out = append(out, v)
	}
	return out
}

// runVectorHandshake runs both sides of one handshake with fixed keys.
func runVectorHandshake(t testing.TB, server *Key, hello clientHello, hp helloPayload, sp serverPayload, psk []byte, label string) (handshakeVector, handshakeResult, handshakeResult) {
	t.Helper()
	ce, se := vecKey(label+" client e"), vecKey(label+" server e")
	var pinned []byte
	if hello.pattern == PatternNK {
		pinned = server.Public()
	}
	ch, msg1, err := startClientHandshake(hello, hp, psk, pinned, bytesReader(ce))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := parseClientHello(msg1)
	if err != nil {
		t.Fatal(err)
	}
	sh, gotHP, err := readClientHello(parsed, psk, &server.kp, bytesReader(se))
	if err != nil {
		t.Fatal(err)
	}
	if gotHP != hp {
		t.Fatalf("hello payload %+v, want %+v", gotHP, hp)
	}
	msg2, sres, err := sh.writeServerHello(sp)
	if err != nil {
		t.Fatal(err)
	}
	gotSP, cres, err := ch.readServerHello(msg2)
	if err != nil {
		t.Fatal(err)
	}
	if gotSP != sp || !bytes.Equal(cres.hash, sres.hash) {
		t.Fatalf("server hello mismatch")
	}
	v := handshakeVector{
		Protocol:           protocolName(hello.suite, hello.pattern, hello.resume),
		ClientEphemeral:    hx(ce),
		ServerEphemeral:    hx(se),
		ClientWindow:       hp.window,
		ResumeCounter:      hp.counter,
		Prologue:           hx(hello.prologue()),
		ClientHello:        hx(msg1),
		ClientHelloPayload: hx(hp.marshal(hello.resume)),
		SessionID:          hx(sp.sessionID[:]),
		ServerDelivered:    sp.delivered,
		ServerWindow:       sp.window,
		TTL:                sp.ttl,
		ServerHelloPayload: hx(sp.marshal()),
		ServerHello:        hx(msg2),
		HandshakeHash:      hx(cres.hash),
	}
	return v, cres, sres
}

func buildVectors(t testing.TB) *vectorFile {
	server, err := NewKey(vecKey("server static"))
	if err != nil {
		t.Fatal(err)
	}
	vf := &vectorFile{
		Comment:            "Dualgate resumable stream protocol v1 test vectors; see README.md. Generated by TestVectors -update.",
		Version:            ProtocolVersion,
		ServerStaticPriv:   hx(server.kp.Private),
		ServerStaticPub:    hx(server.kp.Public),
		ServerStaticPinned: server.PublicString(),
	}
	standalone := []struct {
		name string
		f    frame
	}{
		{"confirm-new", frame{typ: frameConfirm, num: 0}},
		{"data-binary-fin", frame{typ: frameData, flags: flagFIN, num: 0, ack: 0, payload: []byte("hello")}},
		{"data-text-nofin", frame{typ: frameData, flags: flagText, num: 5, ack: 7, payload: []byte("h\u00e9llo ")}},
		{"data-text-fin", frame{typ: frameData, flags: flagText | flagFIN, num: 12, ack: 7, payload: []byte("world")}},
		{"data-binary-nofin", frame{typ: frameData, flags: 0, num: 0x0102030405060708, ack: 0x1112131415161718, payload: []byte{0, 1, 2, 0xff}}},
		{"ack", frame{typ: frameAck, num: 262144}},
		{"ping", frame{typ: framePing, num: 0xdeadbeefcafef00d}},
		{"pong", frame{typ: framePong, num: 0xdeadbeefcafef00d}},
		{"close-normal", frame{typ: frameClose, num: 17, code: CloseNormal, payload: []byte("bye")}},
		{"close-upstream", frame{typ: frameClose, num: 0, code: CloseUpstreamClosed, payload: []byte{}}},
	}
	for _, s := range standalone {
		vf.Frames = append(vf.Frames, frameVec(s.name, s.f))
	}
	for _, r := range []struct {
		c CloseCode
		s string
	}{{CloseUnknownSession, "unknown session"}, {CloseUnsupportedVersion, "versions=1"}, {CloseTooManySessions, ""}} {
		vf.Refuse = append(vf.Refuse, refuseVector{Code: int(r.c), Reason: r.s, Message: hx(appendRefuse(nil, r.c, r.s))})
	}
	m1, m2 := []byte{0x01, 0x00, 0x00, 0x00, 0x00}, appendFrame(nil, &frame{typ: framePing, num: 1})
	st := []byte(StreamPreamble)
	for _, m := range [][]byte{m1, m2} {
		st, _ = appendStreamMessage(st, m)
	}
	vf.Stream = streamVector{Preamble: hx([]byte(StreamPreamble)), Messages: []string{hx(m1), hx(m2)}, Bytes: hx(st)}

	for _, suite := range []Suite{SuiteChaChaPoly, SuiteAESGCM} {
		for _, pat := range []Pattern{PatternNN, PatternNK} {
			vf.Handshakes = append(vf.Handshakes, sessionVec(t, server, suite, pat, false, false))
		}
	}
	// Plain-in-TLS (§5.7): offered and taken, and offered and declined.
	vf.Handshakes = append(vf.Handshakes,
		sessionVec(t, server, SuiteAESGCM, PatternNN, true, true),
		sessionVec(t, server, SuiteChaChaPoly, PatternNN, true, false))
	return vf
}

// sessionVec builds the vectors of one session: its first transport and
// its first resume. offer sets PLAIN_IN_TLS in the hellos, plain is the
// server's frame mode answer.
func sessionVec(t testing.TB, server *Key, suite Suite, pat Pattern, offer, plain bool) sessionVector {
	name := pat.String() + "/" + suite.String()
	switch {
	case offer && plain:
		name += " plain-in-TLS"
	case offer:
		name += " plain-in-TLS declined"
	}
	var sid [16]byte
	copy(sid[:], vecKey(name+" session id"))
	hello := clientHello{version: ProtocolVersion, suite: suite, pattern: pat, plain: offer}
	sv := sessionVector{Name: name, Suite: int(suite), Pattern: int(pat), PlainInTLS: offer}
	if offer {
		mode := 0
		if plain {
			mode = 1
		}
		sv.FrameMode = &mode
	}
	first, c1, s1 := runVectorHandshake(t, server, hello, helloPayload{window: DefaultWindow},
		serverPayload{sessionID: sid, window: DefaultWindow, ttl: 120, hasMode: offer, plain: plain}, nil, name+" first")
	// Transcript of the first transport. The client sends "hello"
	// (binary) and the text message "héllo world" in two frames; the
	// server answers with one binary message and closes.
	c2s := []frame{
		{typ: frameConfirm, num: 0},
		{typ: frameData, flags: flagFIN, num: 0, ack: 0, payload: []byte("hello")},
		{typ: frameData, flags: flagText, num: 5, ack: 0, payload: []byte("h\u00e9llo ")},
		{typ: frameData, flags: flagText | flagFIN, num: 12, ack: 0, payload: []byte("world")},
		{typ: framePing, num: 42},
		{typ: frameAck, num: 4},
	}
	s2c := []frame{
		{typ: frameData, flags: flagFIN, num: 0, ack: 5, payload: []byte("welcome")},
		{typ: framePong, num: 42},
		{typ: frameAck, num: 17},
		{typ: frameClose, num: 7, code: CloseNormal, payload: []byte("bye")},
	}
	first.ClientToServer = sealVecs(t, c1, s1, plain, []string{"confirm", "data-fin", "data-text", "data-text-fin", "ping", "ack"}, c2s)
	first.ServerToClient = sealVecs(t, s1, c1, plain, []string{"data-fin", "pong", "ack", "close"}, s2c)
	sv.First = first
	psk, err := deriveResumeSecret(c1.hash)
	if err != nil {
		t.Fatal(err)
	}
	sv.ResumeSecret = hx(psk)
	rhello := hello
	rhello.resume, rhello.sessionID = true, sid
	resumeV, c2, s2 := runVectorHandshake(t, server, rhello, helloPayload{window: DefaultWindow, counter: 1},
		serverPayload{sessionID: sid, delivered: 5, window: DefaultWindow, ttl: 120, hasMode: offer, plain: plain}, psk, name+" resume")
	// After the resume the server has delivered 5 bytes, the client 4:
	// the client confirms 4 and retransmits the text message, the
	// server retransmits from byte 4 of its binary message.
	resumeV.ClientToServer = sealVecs(t, c2, s2, plain, []string{"confirm", "data-text", "data-text-fin"}, []frame{
		{typ: frameConfirm, num: 4},
		{typ: frameData, flags: flagText, num: 5, ack: 4, payload: []byte("h\u00e9llo ")},
		{typ: frameData, flags: flagText | flagFIN, num: 12, ack: 4, payload: []byte("world")},
	})
	resumeV.ServerToClient = sealVecs(t, s2, c2, plain, []string{"data-fin-retransmit", "close"}, []frame{
		{typ: frameData, flags: flagFIN, num: 4, ack: 17, payload: []byte("ome")},
		{typ: frameClose, num: 7, code: CloseNormal, payload: []byte("bye")},
	})
	sv.Resume = resumeV
	return sv
}

func TestVectors(t *testing.T) {
	vf := buildVectors(t)
	got, err := json.MarshalIndent(vf, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(vectorsFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatalf("%v (run go test -run TestVectors -update ./resume)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale or the wire format changed; regenerate with -update and review the diff", vectorsFile)
	}
}

// TestVectorsDecode checks the stored vectors with the decoders and the
// server side alone, independent of the generator.
func TestVectorsDecode(t *testing.T) {
	raw, err := os.ReadFile(filepath.Clean(vectorsFile))
	if err != nil {
		t.Fatal(err)
	}
	var vf vectorFile
	if err := json.Unmarshal(raw, &vf); err != nil {
		t.Fatal(err)
	}
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	key, err := NewKey(unhex(vf.ServerStaticPriv))
	if err != nil {
		t.Fatal(err)
	}
	if key.PublicString() != vf.ServerStaticPinned || base64.RawURLEncoding.EncodeToString(unhex(vf.ServerStaticPub)) != vf.ServerStaticPinned {
		t.Fatal("static key mismatch")
	}
	for _, fv := range vf.Frames {
		f, err := parseFrame(unhex(fv.Plaintext))
		if err != nil {
			t.Fatalf("%s: %v", fv.Name, err)
		}
		if frameName(f.typ) != fv.Type || f.num != fv.Num || f.ack != fv.Ack || hx(f.payload) != fv.Payload {
			t.Fatalf("%s: decoded %+v", fv.Name, f)
		}
	}
	for _, rv := range vf.Refuse {
		ce, err := parseRefuse(unhex(rv.Message))
		if err != nil || int(ce.Code) != rv.Code || ce.Reason != rv.Reason {
			t.Fatalf("refuse %d: %v %v", rv.Code, ce, err)
		}
	}
	for _, sv := range vf.Handshakes {
		var psk []byte
		for i, hv := range []handshakeVector{sv.First, sv.Resume} {
			hello, err := parseClientHello(unhex(hv.ClientHello))
			if err != nil {
				t.Fatal(err)
			}
			if int(hello.suite) != sv.Suite || int(hello.pattern) != sv.Pattern || hello.resume != (i == 1) || hello.plain != sv.PlainInTLS {
				t.Fatalf("%s: header %+v", sv.Name, hello)
			}
			if hx(hello.prologue()) != hv.Prologue || protocolName(hello.suite, hello.pattern, hello.resume) != hv.Protocol {
				t.Fatalf("%s: prologue or protocol name", sv.Name)
			}
			sh, hp, err := readClientHello(hello, psk, &key.kp, bytesReader(unhex(hv.ServerEphemeral)))
			if err != nil {
				t.Fatalf("%s: %v", sv.Name, err)
			}
			if hp.window != hv.ClientWindow || hp.counter != hv.ResumeCounter {
				t.Fatalf("%s: payload %+v", sv.Name, hp)
			}
			sp := serverPayload{hasMode: hello.plain, plain: sv.FrameMode != nil && *sv.FrameMode == 1}
			copy(sp.sessionID[:], unhex(hv.SessionID))
			sp.delivered, sp.window, sp.ttl = hv.ServerDelivered, hv.ServerWindow, hv.TTL
			msg2, res, err := sh.writeServerHello(sp)
			if err != nil || hx(msg2) != hv.ServerHello || hx(res.hash) != hv.HandshakeHash || res.plain != sp.plain {
				t.Fatalf("%s: server hello differs from the vector (%v)", sv.Name, err)
			}
			for j, fv := range hv.ClientToServer {
				var f frame
				pt := unhex(fv.Ciphertext)
				if res.plain && j > 0 {
					f, err = parseFrame(pt)
				} else {
					f, pt, err = openFrame(res.recv, nil, pt)
				}
				if err != nil || hx(pt) != fv.Plaintext || frameName(f.typ) != fv.Type {
					t.Fatalf("%s: c2s %s: %v", sv.Name, fv.Name, err)
				}
			}
			server := &link{send: newSheddingCipher(res.suite, res.send), plain: res.plain}
			for _, fv := range hv.ServerToClient {
				ct, err := server.encodeFrame(nil, unhex(fv.Plaintext), !res.plain)
				if err != nil || hx(ct) != fv.Ciphertext {
					t.Fatalf("%s: s2c %s differs", sv.Name, fv.Name)
				}
			}
			if i == 0 {
				psk, err = deriveResumeSecret(res.hash)
				if err != nil || hx(psk) != sv.ResumeSecret {
					t.Fatalf("%s: resume secret", sv.Name)
				}
			}
		}
	}
	if fmt.Sprint(len(vf.Handshakes)) != "6" {
		t.Fatalf("want 6 sessions, got %d", len(vf.Handshakes))
	}
}
