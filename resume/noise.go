package resume

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/flynn/noise"
)

var (
	suiteChaCha = noise.NewCipherSuite(dhX25519{}, noise.CipherChaChaPoly, noise.HashSHA256)
	suiteAES    = noise.NewCipherSuite(dhX25519{}, noise.CipherAESGCM, noise.HashSHA256)
)

func cipherSuite(s Suite) (noise.CipherSuite, bool) {
	switch s {
	case SuiteChaChaPoly:
		return suiteChaCha, true
	case SuiteAESGCM:
		return suiteAES, true
	}
	return nil, false
}

func handshakePattern(p Pattern) (noise.HandshakePattern, bool) {
	switch p {
	case PatternNN:
		return noise.HandshakeNN, true
	case PatternNK:
		return noise.HandshakeNK, true
	}
	return noise.HandshakePattern{}, false
}

// protocolName returns the full Noise protocol name (docs/protocol.md §3).
func protocolName(s Suite, p Pattern, resume bool) string {
	psk := ""
	if resume {
		psk = "psk0"
	}
	return "Noise_" + p.String() + psk + "_" + s.String()
}

// noiseConfig builds the Noise configuration of one side of a handshake.
// psk is nil for a first handshake; static is the server's key pair
// (responder) and peerStatic the pinned key (initiator, NK only).
func noiseConfig(h *clientHello, initiator bool, psk []byte, static *noise.DHKey, peerStatic []byte, rng io.Reader) (noise.Config, error) {
	cs, ok := cipherSuite(h.suite)
	if !ok {
		return noise.Config{}, &CloseError{Code: CloseUnsupportedSuite, Reason: "unknown suite"}
	}
	pat, ok := handshakePattern(h.pattern)
	if !ok {
		return noise.Config{}, &CloseError{Code: CloseUnsupportedSuite, Reason: "unknown pattern"}
	}
	cfg := noise.Config{
		CipherSuite: cs,
		Random:      rng,
		Pattern:     pat,
		Initiator:   initiator,
		Prologue:    h.prologue(),
	}
	if h.resume {
		if len(psk) != resumeSecretLen {
			return cfg, errors.New("resume: missing resume secret")
		}
		cfg.PresharedKey = psk
		cfg.PresharedKeyPlacement = 0
	}
	if h.pattern == PatternNK {
		if initiator {
			if len(peerStatic) != dhLen {
				return cfg, errors.New("resume: NK needs the pinned server key")
			}
			cfg.PeerStatic = peerStatic
		} else {
			cfg.StaticKeypair = *static
		}
	}
	return cfg, nil
}

// deriveResumeSecret computes the psk of every resume of a session from the
// handshake hash of its first handshake.
func deriveResumeSecret(h []byte) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, h, nil, resumeInfo, resumeSecretLen)
	if err != nil {
		return nil, fmt.Errorf("resume: derive resume secret: %w", err)
	}
	return k, nil
}

// handshakeResult is what a completed handshake yields.
type handshakeResult struct {
	send, recv *noise.CipherState
	suite      noise.CipherSuite // of send and recv
	hash       []byte            // final handshake hash (channel binding)
	// plain: frames after CONFIRM go without the AEAD (plain-in-TLS, §5.7).
	plain bool
}

// clientHandshake is the throwaway state of the client side of one handshake.
type clientHandshake struct {
	hello clientHello
	hs    *noise.HandshakeState
}

// startClientHandshake builds the client hello message.
func startClientHandshake(hello clientHello, payload helloPayload, psk, pinned []byte, rng io.Reader) (*clientHandshake, []byte, error) {
	cfg, err := noiseConfig(&hello, true, psk, nil, pinned, rng)
	if err != nil {
		return nil, nil, err
	}
	hs, err := noise.NewHandshakeState(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("resume: noise: %w", err)
	}
	msg := hello.appendHeader(make([]byte, 0, 96))
	msg, _, _, err = hs.WriteMessage(msg, payload.marshal(hello.resume))
	if err != nil {
		return nil, nil, fmt.Errorf("resume: noise: %w", err)
	}
	return &clientHandshake{hello: hello, hs: hs}, msg, nil
}

// readServerHello processes the server hello (or a refuse, returned as *CloseError).
func (c *clientHandshake) readServerHello(msg []byte) (serverPayload, handshakeResult, error) {
	var res handshakeResult
	if len(msg) > 0 && msg[0] == msgRefuse {
		ce, err := parseRefuse(msg)
		if err != nil {
			return serverPayload{}, res, err
		}
		return serverPayload{}, res, ce
	}
	if len(msg) < 1+dhLen+tagLen || msg[0] != msgServerHello {
		return serverPayload{}, res, protoErr("bad server hello")
	}
	pl, cs1, cs2, err := c.hs.ReadMessage(nil, msg[1:])
	if err != nil {
		if c.hello.pattern == PatternNK && !c.hello.resume {
			return serverPayload{}, res, &CloseError{Code: CloseServerKeyMismatch, Reason: "server hello does not authenticate against the pinned key"}
		}
		return serverPayload{}, res, &CloseError{Code: CloseProofFailed, Reason: "server hello does not authenticate"}
	}
	p, err := parseServerPayload(pl, c.hello.plain)
	if err != nil {
		return p, res, &CloseError{Code: CloseProtocolError, Reason: err.Error()}
	}
	suite, _ := cipherSuite(c.hello.suite)
	res = handshakeResult{send: cs1, recv: cs2, suite: suite, hash: append([]byte(nil), c.hs.ChannelBinding()...), plain: p.plain}
	return p, res, nil
}

// serverHandshake is the throwaway state of the server side of one handshake.
type serverHandshake struct {
	hello clientHello
	hs    *noise.HandshakeState
}

// readClientHello runs Noise message 1. The caller has parsed and checked the
// header. A decryption failure is returned as errNoiseDecrypt.
func readClientHello(hello clientHello, psk []byte, static *noise.DHKey, rng io.Reader) (*serverHandshake, helloPayload, error) {
	cfg, err := noiseConfig(&hello, false, psk, static, nil, rng)
	if err != nil {
		return nil, helloPayload{}, err
	}
	hs, err := noise.NewHandshakeState(cfg)
	if err != nil {
		return nil, helloPayload{}, fmt.Errorf("resume: noise: %w", err)
	}
	pl, _, _, err := hs.ReadMessage(nil, hello.noiseMsg)
	if err != nil {
		return nil, helloPayload{}, fmt.Errorf("%w: %v", errNoiseDecrypt, err)
	}
	p, err := parseHelloPayload(pl, hello.resume)
	if err != nil {
		return nil, p, err
	}
	return &serverHandshake{hello: hello, hs: hs}, p, nil
}

var errNoiseDecrypt = errors.New("resume: handshake message does not authenticate")

// writeServerHello builds the server hello and completes the handshake.
func (s *serverHandshake) writeServerHello(p serverPayload) ([]byte, handshakeResult, error) {
	msg := make([]byte, 1, 1+dhLen+serverHelloPayload+1+tagLen)
	msg[0] = msgServerHello
	msg, cs1, cs2, err := s.hs.WriteMessage(msg, p.marshal())
	if err != nil {
		return nil, handshakeResult{}, fmt.Errorf("resume: noise: %w", err)
	}
	suite, _ := cipherSuite(s.hello.suite)
	return msg, handshakeResult{send: cs2, recv: cs1, suite: suite, hash: append([]byte(nil), s.hs.ChannelBinding()...), plain: p.plain}, nil
}

// sealFrame encrypts the plaintext frame pt into dst.
func sealFrame(cs *noise.CipherState, dst, pt []byte) ([]byte, error) {
	out, err := cs.Encrypt(dst, nil, pt)
	if err != nil {
		return nil, fmt.Errorf("resume: seal: %w", err)
	}
	return out, nil
}

// openFrame decrypts and decodes one transport message.
func openFrame(cs *noise.CipherState, dst, msg []byte) (frame, []byte, error) {
	pt, err := cs.Decrypt(dst, nil, msg)
	if err != nil {
		return frame{}, dst, fmt.Errorf("resume: transport message does not authenticate: %w", err)
	}
	f, err := parseFrame(pt)
	return f, pt, err
}
