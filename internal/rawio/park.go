package rawio

import "errors"

// ErrNoPark is returned by Park where there is no epoll: the caller waits
// with a goroutine of its own (Read) instead.
var ErrNoPark = errors.New("rawio: Park needs Linux")
