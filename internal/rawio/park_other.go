//go:build !linux

package rawio

// Park is not available on this platform; see the Linux version.
func (r *Reader) Park(fn func()) error { return ErrNoPark }

// Cancel has nothing to take back on this platform.
func (r *Reader) Cancel() func() { return nil }
