package faultproxy

import "fmt"

// Fault is a transport fault a Proxy injects into a link; the zero value is
// Drop. See the package documentation for what each one does on the wire.
type Fault int

// The faults, in the order Stats reports them.
const (
	// Drop closes both sides of the link (FIN).
	Drop Fault = iota
	// Reset aborts both sides of the link (RST).
	Reset
	// HalfOpen closes the client side and holds the target side open and
	// silent.
	HalfOpen
	// Blackhole stops relaying and holds both sides open without reading
	// them.
	Blackhole
	// Discard keeps reading both sides and throws the bytes away; the link
	// stays live until a peer closes it.
	Discard

	numFaults = iota
)

// Faults returns every fault kind, in order.
func Faults() []Fault { return []Fault{Drop, Reset, HalfOpen, Blackhole, Discard} }

// String returns the fault's lower-case name ("drop", "half-open", …).
func (f Fault) String() string {
	switch f {
	case Drop:
		return "drop"
	case Reset:
		return "reset"
	case HalfOpen:
		return "half-open"
	case Blackhole:
		return "blackhole"
	case Discard:
		return "discard"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

func (f Fault) valid() bool { return f >= 0 && f < numFaults }

// Direction is the way bytes travel through a link.
type Direction int

const (
	// ToTarget is from the client side (the connection the proxy accepted)
	// to the target side.
	ToTarget Direction = iota
	// ToClient is from the target side to the client side.
	ToClient
)

// String returns "to-target" or "to-client".
func (d Direction) String() string {
	switch d {
	case ToTarget:
		return "to-target"
	case ToClient:
		return "to-client"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// Unlimited is a Budget limit that never runs out.
const Unlimited int64 = -1

// Budget is how many bytes a link may forward before its fault strikes.
// Total counts both directions together, Up the bytes towards the target
// and Down the bytes towards the client. A negative limit (Unlimited) never
// runs out; a limit of n lets n bytes through and strikes when byte n+1
// arrives, so 0 strikes on the first byte. When a chunk exceeds a limit, the
// part within every limit is forwarded and then Fault strikes.
//
// A Fault outside the defined kinds is taken as Drop. The zero Budget
// strikes Drop on the first byte; use NoBudget or TotalBudget to start from
// unlimited.
type Budget struct {
	Total, Up, Down int64
	Fault           Fault
}

// NoBudget returns a Budget that never runs out.
func NoBudget() Budget { return Budget{Total: Unlimited, Up: Unlimited, Down: Unlimited} }

// TotalBudget returns a Budget of n bytes in both directions together
// (Unlimited per direction) that injects f.
func TotalBudget(n int64, f Fault) Budget {
	return Budget{Total: n, Up: Unlimited, Down: Unlimited, Fault: f}
}
