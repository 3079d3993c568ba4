// Package proxytest starts real forward proxies on loopback for tests of
// code that dials through proxydial: Debian's Dante SOCKS5 server (danted),
// with or without username/password authentication, and a small HTTP CONNECT
// proxy with optional Basic authentication and fault injection.
//
// Both count the connections they relayed, so a test can prove that its
// traffic really went through the proxy rather than around it.
//
// # Dante and the system password database
//
// Dante's "username" method checks RFC 1929 credentials against the system
// password database (getpwnam/getspnam plus crypt). StartDante with
// Auth set therefore needs root: it creates, once per machine and under a
// file lock, a dedicated system user (TestUser) without a home or login
// shell, sets a random password with chpasswd, and keeps that password in a
// root-only file in os.TempDir() so concurrent test processes agree on it.
// The alternatives Dante 1.4 offers were weighed and rejected: pam.username
// needs a service file in /etc/pam.d as well, plus pam_userdb with a database
// built by db_load (db-util is not installed) or a pam_exec helper, so it
// changes more system state than one account; bsdauth exists only on BSD;
// gssapi needs a Kerberos KDC.
//
// A missing danted fails the test through internal/testenv.RequireBinary;
// nothing skips.
package proxytest
