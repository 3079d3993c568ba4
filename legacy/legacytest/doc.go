// Package legacytest holds test helpers for the legacy protocol and for
// anything else that must survive a bad network: Proxy, a real loopback TCP
// proxy that injects faults (drops, resets, half-open and black-holed
// connections) after a random number of forwarded bytes.
package legacytest
