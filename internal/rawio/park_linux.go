package rawio

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// Park arranges for fn to run, in a goroutine of its own, once the socket
// has something to report (bytes, its end or an error), without a goroutine
// waiting for it meanwhile: every parked socket of the process is watched
// by one epoll instance and one goroutine, which exits when none is left.
// An idle connection then costs no goroutine at all.
//
// fn runs at most once per Park. Cancel takes a pending fn back; Close of
// the connection alone does not run it (the socket leaves the epoll set
// silently), so the owner cancels before it closes. Park returns an error,
// without keeping fn, when the connection is already closed (unless a
// concurrent Cancel took fn first: then Park returns nil and the canceller
// has fn). At most one Park may be pending per Reader.
func (r *Reader) Park(fn func()) error {
	p, err := getPoller()
	if err != nil {
		return err
	}
	token := p.add(r, fn)
	var ctlErr error
	err = r.rc.Control(func(fd uintptr) {
		// Level-triggered and one-shot: bytes already there fire at once,
		// and the registration stays (disabled) for the next Park to re-arm.
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollOneShot}
		putToken(&ev, token)
		// Re-arm the registration of an earlier Park, else add one.
		first, second := syscall.EPOLL_CTL_MOD, syscall.EPOLL_CTL_ADD
		if !r.registered {
			first, second = second, first
		}
		ctlErr = syscall.EpollCtl(p.epfd, first, int(fd), &ev)
		if ctlErr == syscall.ENOENT || ctlErr == syscall.EEXIST {
			ctlErr = syscall.EpollCtl(p.epfd, second, int(fd), &ev)
		}
		r.registered = ctlErr == nil
	})
	if err == nil && ctlErr != nil {
		err = os.NewSyscallError("epoll_ctl", ctlErr)
	}
	if err != nil && p.take(r, token) != nil {
		return fmt.Errorf("rawio: park: %w", err)
	}
	return nil
}

// Cancel takes back the fn of a pending Park and returns it (nil when none
// is pending: it ran or is about to). The caller runs it or drops it.
func (r *Reader) Cancel() func() {
	p, err := getPoller()
	if err != nil {
		return nil
	}
	r.pmu.Lock()
	token := r.token
	r.pmu.Unlock()
	if token == 0 {
		return nil
	}
	return p.take(r, token)
}

// epollOneShot is EPOLLONESHOT (1 << 30), which package syscall lacks.
const epollOneShot = 1 << 30

func putToken(ev *syscall.EpollEvent, token uint64) {
	ev.Fd = int32(uint32(token))
	ev.Pad = int32(uint32(token >> 32))
}

func tokenOf(ev *syscall.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// poller is the process's epoll instance for parked sockets and the state
// of the goroutine that waits on it.
type poller struct {
	epfd int
	wake int // eventfd: makes the loop look at its set (to exit when empty)

	mu      sync.Mutex
	waits   map[uint64]parked
	next    uint64 // token of the next Park (0 means none)
	running bool   // a loop goroutine is waiting or about to
}

type parked struct {
	r  *Reader
	fn func()
}

var (
	pollerOnce sync.Once
	thePoller  *poller
	pollerErr  error
)

// wakeToken marks the eventfd's events.
const wakeToken = ^uint64(0)

func getPoller() (*poller, error) {
	pollerOnce.Do(func() {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			pollerErr = os.NewSyscallError("epoll_create1", err)
			return
		}
		wake, _, errno := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
		if errno != 0 {
			syscall.Close(epfd)
			pollerErr = os.NewSyscallError("eventfd2", errno)
			return
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
		putToken(&ev, wakeToken)
		if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, int(wake), &ev); err != nil {
			syscall.Close(epfd)
			syscall.Close(int(wake))
			pollerErr = os.NewSyscallError("epoll_ctl", err)
			return
		}
		thePoller = &poller{epfd: epfd, wake: int(wake), waits: make(map[uint64]parked), next: 1}
	})
	return thePoller, pollerErr
}

// add records fn under a new token and makes sure a loop runs.
func (p *poller) add(r *Reader, fn func()) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	token := p.next
	p.next++
	p.waits[token] = parked{r: r, fn: fn}
	r.pmu.Lock()
	r.token = token
	r.pmu.Unlock()
	if !p.running {
		p.running = true
		go p.loop()
	}
	return token
}

// take removes token's wait and returns its fn (nil if it was gone). When
// the set becomes empty the loop is woken so that it exits.
func (p *poller) take(r *Reader, token uint64) func() {
	p.mu.Lock()
	w, ok := p.waits[token]
	if ok {
		delete(p.waits, token)
		r.pmu.Lock()
		if r.token == token {
			r.token = 0
		}
		r.pmu.Unlock()
	}
	empty := len(p.waits) == 0
	p.mu.Unlock()
	if ok && empty {
		p.kick()
	}
	return w.fn
}

func (p *poller) kick() {
	one := [8]byte{1}
	syscall.Write(p.wake, one[:]) //nolint:errcheck // EAGAIN: a wake is pending anyway
}

// loop waits for parked sockets and runs their fns, until none is parked.
func (p *poller) loop() {
	events := make([]syscall.EpollEvent, 128)
	var fns []func()
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			n = 0
			if !errors.Is(err, syscall.EINTR) {
				// Cannot happen with valid arguments; if it does, do not spin.
				time.Sleep(time.Millisecond)
			}
		}
		p.mu.Lock()
		for i := range max(n, 0) {
			token := tokenOf(&events[i])
			if token == wakeToken {
				var b [8]byte
				syscall.Read(p.wake, b[:]) //nolint:errcheck // drains the counter
				continue
			}
			if w, ok := p.waits[token]; ok {
				delete(p.waits, token)
				w.r.pmu.Lock()
				if w.r.token == token {
					w.r.token = 0
				}
				w.r.pmu.Unlock()
				fns = append(fns, w.fn)
			}
		}
		exit := len(p.waits) == 0
		if exit {
			p.running = false
		}
		p.mu.Unlock()
		for i, fn := range fns {
			go fn()
			fns[i] = nil
		}
		fns = fns[:0]
		if exit {
			return
		}
	}
}
