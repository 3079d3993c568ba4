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
// Dante's PAM method was rejected because it would also need a service file
// in /etc/pam.d and a password-database module that is not installed.
//
// A missing danted fails the test through internal/testenv.RequireBinary;
// nothing skips.
package proxytest
