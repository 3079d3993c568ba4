package legacy

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Specification constants: the wire sizes of the handshake messages
// (docs/legacy.md). Integers are little-endian uint64.
const (
	// TypeNewSession is the first byte of a new-session handshake.
	TypeNewSession byte = 0x00
	// TypeReconnect is the first byte of a reconnect handshake.
	TypeReconnect byte = 0xFF

	newRequestLen        = 1 + 8  // type, client public key
	newResponseLen       = 24     // server public key, encrypted ID, challenge
	proofLen             = 16     // MD5
	challengeLen         = 8      // random challenge
	reconnectSignedLen   = 24     // ID, client write count, client read count
	reconnectRequestLen  = 1 + 40 // type, signed part, proof
	reconnectResponseLen = 24     // server write count, server read count, challenge
)

// errWrongType, errBadLength and errBadPublicKey are the parse failures of
// the handshake codecs.
var (
	errWrongType    = errors.New("legacy: wrong handshake type byte")
	errBadLength    = errors.New("legacy: wrong handshake message length")
	errBadPublicKey = errors.New("legacy: invalid dh64 public key")
)

// parseNewRequest decodes the client's new-session message (type byte and
// public key). It rejects any length mismatch, a type other than 0x00 and an
// unusable public key (0 in particular).
func parseNewRequest(b []byte) (clientPub uint64, err error) {
	if len(b) != newRequestLen {
		return 0, fmt.Errorf("%w: new session request of %d bytes", errBadLength, len(b))
	}
	if b[0] != TypeNewSession {
		return 0, fmt.Errorf("%w: 0x%02x", errWrongType, b[0])
	}
	pub := binary.LittleEndian.Uint64(b[1:])
	if !validPublic(pub) {
		return 0, fmt.Errorf("%w: %#x", errBadPublicKey, pub)
	}
	return pub, nil
}

// appendNewRequest appends the client's new-session message.
func appendNewRequest(dst []byte, clientPub uint64) []byte {
	dst = append(dst, TypeNewSession)
	return binary.LittleEndian.AppendUint64(dst, clientPub)
}

// newResponse is the server's 24-byte answer to a new-session request.
type newResponse struct {
	serverPub uint64
	encID     [8]byte // LE64(ID) XOR the first 8 bytes of the server's write keystream
	challenge [challengeLen]byte
}

func (r *newResponse) marshal() (b [newResponseLen]byte) {
	binary.LittleEndian.PutUint64(b[0:], r.serverPub)
	copy(b[8:], r.encID[:])
	copy(b[16:], r.challenge[:])
	return b
}

func parseNewResponse(b []byte) (newResponse, error) {
	var r newResponse
	if len(b) != newResponseLen {
		return r, fmt.Errorf("%w: new session response of %d bytes", errBadLength, len(b))
	}
	r.serverPub = binary.LittleEndian.Uint64(b[0:])
	if !validPublic(r.serverPub) {
		return r, fmt.Errorf("%w: %#x", errBadPublicKey, r.serverPub)
	}
	copy(r.encID[:], b[8:16])
	copy(r.challenge[:], b[16:24])
	return r, nil
}

// reconnectRequest is the client's reconnect message after the 0xFF byte.
type reconnectRequest struct {
	id         uint64
	writeCount uint64 // bytes the client has written in the session
	readCount  uint64 // bytes the client has received in the session
	proof      [proofLen]byte
}

// signed returns the 24 bytes the proof covers.
func (r *reconnectRequest) signed() (b [reconnectSignedLen]byte) {
	binary.LittleEndian.PutUint64(b[0:], r.id)
	binary.LittleEndian.PutUint64(b[8:], r.writeCount)
	binary.LittleEndian.PutUint64(b[16:], r.readCount)
	return b
}

// sign sets the proof from key.
func (r *reconnectRequest) sign(key sessionKey) {
	s := r.signed()
	r.proof = proof(s[:], key)
}

func (r *reconnectRequest) marshal() (b [reconnectRequestLen]byte) {
	b[0] = TypeReconnect
	s := r.signed()
	copy(b[1:], s[:])
	copy(b[1+reconnectSignedLen:], r.proof[:])
	return b
}

// parseReconnectRequest decodes the 41-byte reconnect message including its
// type byte. It checks the shape only: the proof needs the session key.
func parseReconnectRequest(b []byte) (reconnectRequest, error) {
	var r reconnectRequest
	if len(b) != reconnectRequestLen {
		return r, fmt.Errorf("%w: reconnect request of %d bytes", errBadLength, len(b))
	}
	if b[0] != TypeReconnect {
		return r, fmt.Errorf("%w: 0x%02x", errWrongType, b[0])
	}
	r.id = binary.LittleEndian.Uint64(b[1:])
	r.writeCount = binary.LittleEndian.Uint64(b[9:])
	r.readCount = binary.LittleEndian.Uint64(b[17:])
	copy(r.proof[:], b[25:])
	return r, nil
}

// reconnectResponse is the server's 24-byte answer to a reconnect request.
// All zeros means refused.
type reconnectResponse struct {
	writeCount uint64 // bytes the server has written in the session
	readCount  uint64 // bytes the server has received in the session
	challenge  [challengeLen]byte
}

func (r *reconnectResponse) marshal() (b [reconnectResponseLen]byte) {
	binary.LittleEndian.PutUint64(b[0:], r.writeCount)
	binary.LittleEndian.PutUint64(b[8:], r.readCount)
	copy(b[16:], r.challenge[:])
	return b
}

// refused reports whether r is the all-zero refusal.
func (r *reconnectResponse) refused() bool {
	return r.writeCount == 0 && r.readCount == 0 && r.challenge == [challengeLen]byte{}
}

func parseReconnectResponse(b []byte) (reconnectResponse, error) {
	var r reconnectResponse
	if len(b) != reconnectResponseLen {
		return r, fmt.Errorf("%w: reconnect response of %d bytes", errBadLength, len(b))
	}
	r.writeCount = binary.LittleEndian.Uint64(b[0:])
	r.readCount = binary.LittleEndian.Uint64(b[8:])
	copy(r.challenge[:], b[16:])
	return r, nil
}

// countsConsistent applies the format's reconnect rule from one side's
// point of view: the peer cannot have written less than we received nor
// received more than we wrote, and what it missed must still be in our
// resend buffer (held reports whether the offset peerRead is retained).
func countsConsistent(ourWrite, ourRead, peerWrite, peerRead uint64, held func(uint64) bool) bool {
	return peerWrite >= ourRead && ourWrite >= peerRead && held(peerRead)
}
