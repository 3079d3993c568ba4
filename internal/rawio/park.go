package rawio

import (
	"errors"
	"time"
)

// ParkAfter is how long an owner waits for a socket in a goroutine of its
// own (the runtime's poller, cheap while bytes keep coming) before it
// parks the wait with Park, which costs a system call each time.
const ParkAfter = time.Second

// ErrNoPark is returned by Park where there is no epoll: the caller waits
// with a goroutine of its own (Read) instead.
var ErrNoPark = errors.New("rawio: Park needs Linux")
