package wsbridge

import "sync"

// loopBuf is the storage of one copy loop: a buffer from the Bridger's pool,
// taken only when data is there to read (so that a loop waiting on an idle
// source can hold none), and possibly replaced by a larger one grown from it
// for a long message. Not safe for concurrent use; the zero value with pool
// set is ready.
type loopBuf struct {
	pool *sync.Pool
	bp   *[]byte // the pooled buffer held, nil if none
	b    []byte  // storage: *bp, or a larger buffer grown from it
}

// get returns the loop's storage, taking a buffer from the pool if it holds
// none.
func (l *loopBuf) get() []byte {
	if l.bp == nil {
		l.bp = l.pool.Get().(*[]byte)
		l.b = *l.bp
	}
	return l.b
}

// grown keeps b, which was grown from the storage that get returned, for the
// next reads (it is dropped, not pooled, on release).
func (l *loopBuf) grown(b []byte) {
	if cap(b) > cap(l.b) {
		l.b = b[:cap(b)]
	}
}

// release returns the pooled buffer, if any, and drops a grown one.
func (l *loopBuf) release() {
	if l.bp != nil {
		l.pool.Put(l.bp)
		l.bp, l.b = nil, nil
	}
}

// Get and Release lend the storage to internal/rawio.
func (l *loopBuf) Get() []byte { return l.get() }
func (l *loopBuf) Release()    { l.release() }
