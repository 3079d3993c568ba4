package certs

import (
	"crypto/sha256"
	"fmt"
	"time"
)

// fileState remembers what files mode last tried to load, so that the
// poller reloads only when the content changes and reports a broken pair
// once rather than at every tick.
//
// Polling the content (two small files every PollInterval) is used rather
// than fsnotify: it needs no extra dependency, and it sees every way
// certificates get replaced, including the symlink swap Kubernetes uses
// for mounted secrets and editors that write a new inode, which break
// inotify watches on the file itself.
type fileState struct {
	tried   [2][sha256.Size]byte // content hashes of the last attempt
	haveTry bool
	lastErr string // last read/parse error reported, to avoid repeating it
	loaded  bool   // a pair has been loaded at least once
}

func (m *Manager) startFiles() error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	_, err := m.reloadFilesLocked(true)
	return err
}

// reloadFilesLocked reads the pair and, if its content differs from the
// last attempt (or force is set), parses it and swaps it in. On any error
// the certificate in use stays. It reports whether a new certificate was
// installed. The caller must hold m.reloadMu.
func (m *Manager) reloadFilesLocked(force bool) (bool, error) {
	certPEM, err := readLimited(m.opts.CertFile, m.opts.MaxFileSize)
	var keyPEM []byte
	if err == nil {
		keyPEM, err = readLimited(m.opts.KeyFile, m.opts.MaxFileSize)
	}
	if err != nil {
		return false, m.filesFailedLocked(force, err)
	}
	sums := [2][sha256.Size]byte{sha256.Sum256(certPEM), sha256.Sum256(keyPEM)}
	if !force && m.files.haveTry && sums == m.files.tried {
		return false, nil
	}
	m.files.tried, m.files.haveTry = sums, true
	cert, err := ParseKeyPair(certPEM, keyPEM)
	if err != nil {
		err = fmt.Errorf("%w (files %s, %s)", err, m.opts.CertFile, m.opts.KeyFile)
		return false, m.filesFailedLocked(true, err)
	}
	m.cur.Store(cert)
	m.files.lastErr = ""
	first := !m.files.loaded
	m.files.loaded = true
	leaf := cert.Leaf
	m.info.Names = leafNames(leaf)
	m.info.SPKIHash = SPKIHash(leaf)
	m.info.NotAfter = leaf.NotAfter
	m.met.setExpiry(leaf)
	if first {
		m.met.obtain.WithLabelValues(ModeFiles.String(), "ok").Inc()
	} else {
		m.met.reload.WithLabelValues("ok").Inc()
	}
	m.log.Info("certificate loaded", "cert_file", m.opts.CertFile, "names", m.info.Names,
		"not_after", leaf.NotAfter.UTC(), "expires_in", until(leaf.NotAfter), "spki_sha256", m.info.SPKIHash)
	if now := time.Now(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		m.log.Warn("certificate is not valid now; clients will reject it",
			"not_before", leaf.NotBefore.UTC(), "not_after", leaf.NotAfter.UTC())
	}
	return true, nil
}

// filesFailedLocked counts and logs a failed load. A poll (report false)
// logs a given error only once; an explicit reload always logs.
func (m *Manager) filesFailedLocked(report bool, err error) error {
	if !m.files.loaded {
		m.met.obtain.WithLabelValues(ModeFiles.String(), "error").Inc()
		return err
	}
	if report || err.Error() != m.files.lastErr {
		m.met.reload.WithLabelValues("error").Inc()
		m.log.Error("certificate reload failed; keeping the current certificate", "err", err)
	}
	m.files.lastErr = err.Error()
	return err
}
